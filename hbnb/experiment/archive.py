"""What an earlier version of an experiment file left in a stage's way, set aside instead of a dead end."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hbnb.experiment.pipeline import Stage


ARCHIVE = "archive"


def set_aside_stale(stage: Stage, root: Path) -> Path | None:
    """Move what an earlier version of the parameter file left where `stage` will write, into
    `root/archive/<time>-<folder>/`; returns where, or None when nothing is in the way.

    A trained run whose parameters differ (the whole run folder: its training and evaluation) and a
    finished evaluation made with other inputs (its eval folder) are set aside, so an edited file
    reruns what changed without a dead end and without deleting anything. An unfinished stage of the
    same parameters is left to resume.
    """
    if stage.key.startswith("train/"):
        import yaml

        from hbnb.training.trainer import same_training

        old = stage.folder / "train" / "params.yaml"
        try:
            earlier = yaml.safe_load(old.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return None
        same = same_training(earlier, stage.inputs["train"])
        return None if same else _archive(stage.folder, root)
    if stage.key.startswith("evaluate/") and (stage.folder / "eval").is_dir():
        try:
            earlier = json.loads(stage.record.read_text(encoding="utf-8")).get("inputs")
        except (OSError, ValueError):
            return None  # unfinished, or recorded before inputs were: redone in place
        now = json.loads(json.dumps(stage.inputs, default=str))
        if earlier is not None and earlier != now:  # finished with other inputs (a rerun of the same: in place)
            return _archive(stage.folder / "eval", root, stage.folder.name)
    return None


def _archive(path: Path, root: Path, run: str | None = None) -> Path:
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{run or path.name}" + ("-eval" if run else "")
    target = root / ARCHIVE / name
    n = 1
    while target.exists():
        n += 1
        target = root / ARCHIVE / f"{name}-{n}"
    target.parent.mkdir(parents=True, exist_ok=True)
    path.rename(target)
    return target
