"""Experiment tracking of a training run: which trackers the trainer reports to, and where TensorBoard writes.

`training.report_to` names the trackers (`TRACKERS`: Hugging Face's own integrations, run by the
trainer's `report_to`); unset, a run reports to TensorBoard when the `tensorboard` package is
installed, else to none. A tracker named but not installed is refused before training starts,
naming the package to install. TensorBoard writes under the run's own folder (`<output_dir>/logs/`,
unless `TENSORBOARD_LOGGING_DIR` says elsewhere), so the curves travel with the run and a resumed run
adds its event file beside the first one's (TensorBoard joins them by step). wandb, MLflow and Trackio
keep their own configuration (`WANDB_PROJECT`, `MLFLOW_TRACKING_URI`, ...): their point is one place that
compares many runs; hbnb names each run there after its folder.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hbnb.errors import ParamsError

# the trackers training.report_to accepts, and the package each needs
TRACKERS: dict[str, str] = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb", "mlflow": "mlflow"}
LOG_DIR = "logs"  # TensorBoard's folder inside the run's output folder
_TENSORBOARD_ENV = "TENSORBOARD_LOGGING_DIR"  # transformers' TensorBoardCallback reads it


def installed(package: str) -> bool:
    """Whether `package` can be imported here (without importing it)."""
    return importlib.util.find_spec(package) is not None


def resolve_trackers(report_to: Sequence[str] | None) -> list[str]:
    """The trackers a run reports to: `report_to` as given ([] for none), or by default ["tensorboard"] when
    the tensorboard package is installed, else []. Raises ParamsError for a named tracker not installed."""
    if report_to is None:
        return ["tensorboard"] if installed(TRACKERS["tensorboard"]) else []
    missing = [name for name in report_to if not installed(TRACKERS[name])]
    if missing:
        packages = " ".join(TRACKERS[name] for name in missing)
        raise ParamsError(
            f"training.report_to = {list(report_to)}: {', '.join(missing)} needs its package, which is not installed "
            f"here; run `pip install {packages}`, or leave {'them' if len(missing) > 1 else 'it'} out of "
            f"training.report_to (allowed: {', '.join(TRACKERS)}, none)"
        )
    return list(report_to)


def run_name(out: Path) -> str:
    """The run's name in wandb, MLflow and Trackio: "<experiment>/<run>" for a run of `hbnb run`
    (its training folder is <experiment>/<run>/train), else the output folder's name."""
    out = Path(out).resolve()
    return f"{out.parent.parent.name}/{out.parent.name}" if out.name == "train" else out.name


def log_dir(out: Path) -> Path:
    """Where TensorBoard writes the run's event files: TENSORBOARD_LOGGING_DIR if set, else <out>/logs."""
    given = os.environ.get(_TENSORBOARD_ENV)
    return Path(given).expanduser() if given else Path(out) / LOG_DIR


def direct_tensorboard(trainer: Any, out: Path) -> Path | None:
    """Point the trainer's TensorBoard callback (if it reports there) at `log_dir(out)`; returns that folder.

    transformers' callback writes to <output_dir>/runs/<time>_<host> unless told, a new folder for every
    start; one fixed folder keeps a resumed run's events with the first part's.
    """
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback):
            callback.logging_dir = str(log_dir(out))
            return Path(callback.logging_dir)
    return None
