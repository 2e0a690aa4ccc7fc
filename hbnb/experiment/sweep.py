"""An experiment: its parameter file expanded into the grid of runs it asks for.

A `sweep:` block maps parameter paths to lists of values; the runs are their
Cartesian product over the base values. Every run is validated as a complete
training configuration before anything runs, so a bad combination is refused with
the file, the run and the key. Runs share the data stage and, per model, the
evaluation of the untuned model (the baseline).
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hbnb.errors import ParamsError
from hbnb.params import DataParams, ExperimentParams, TrainParams, format_errors, load_yaml


@dataclass(frozen=True)
class RunSpec:
    """One trained run of an experiment: its name, swept values and complete training parameters."""

    name: str
    values: dict[str, Any]  # the swept values that define this run
    data: DataParams
    train: TrainParams  # output_dir is relative to the run folder

    @property
    def model(self) -> str:
        return self.train.model


@dataclass(frozen=True)
class Baseline:
    """The untuned model of a run, evaluated on the same data sets."""

    name: str
    model: str
    data: DataParams


def load(path: Path | str) -> ExperimentParams:
    """Read and validate an experiment file (every run of its grid is checked too)."""
    params = load_yaml(ExperimentParams, path)
    runs(params, source=str(path))
    return params


def runs(params: ExperimentParams, source: str = "the experiment file") -> list[RunSpec]:
    """The grid of runs, in sweep order; names are made of the swept values (e.g. strategy-hybrid_seed-1)."""
    keys = list(params.sweep)
    combos = list(itertools.product(*(params.sweep[k] for k in keys))) or [()]
    specs: list[RunSpec] = []
    base = params.model_dump(mode="json", exclude={"sweep"})
    _set(base, "seed", base["seed"])  # the experiment's seed seeds training and batching
    for combo in combos:
        values = dict(zip(keys, combo))
        merged = copy.deepcopy(base)
        for key, value in values.items():
            _set(merged, key, value)
        name = _run_name(values) if values else "run"
        try:
            point = ExperimentParams.model_validate(merged)
            train = TrainParams.model_validate(
                {
                    **point.training.model_dump(),
                    "model": point.model,
                    "data": point.data.train,
                    "batching": point.batching.model_dump(),
                    "output_dir": "train",
                }
            )
        except ValidationError as exc:
            raise ParamsError(format_errors(exc, f"{source}, run {name} ({_describe(values)})")) from None
        specs.append(RunSpec(name, values, point.data, train))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        specs = [RunSpec(f"{s.name}_{i}", s.values, s.data, s.train) for i, s in enumerate(specs)]
    return specs


def baselines(params: ExperimentParams, specs: list[RunSpec]) -> list[Baseline]:
    """One untuned evaluation per (model, evaluation data), shared by every run that uses them."""
    if not params.baseline:
        return []

    def evaluation(spec: RunSpec) -> str:
        return spec.data.model_dump_json(exclude={"train"})

    several = len({evaluation(s) for s in specs}) > 1
    seen: dict[tuple[str, str], Baseline] = {}
    for spec in specs:
        key = (spec.model, evaluation(spec))
        if key not in seen:
            suffix = f"-{_slug('+'.join(spec.data.evaluate))}" if several else ""
            seen[key] = Baseline(f"baseline-{_slug(spec.model.lstrip('./'))}{suffix}", spec.model, spec.data)
    return list(seen.values())


def _set(tree: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted parameter path; "seed" sets the training and the batching seed; a
    "variant" sets all its paths together."""
    if key == "variant":
        for path, v in value.items():
            if path != "name":
                _set(tree, path, v)
        return
    if key == "seed":
        tree["seed"] = value
        tree["training"]["seed"] = value
        tree["batching"]["seed"] = value
        return
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        node = node[part]
    node[leaf] = value


def _run_name(values: dict[str, Any]) -> str:
    parts = []
    for key, value in values.items():
        if key == "variant":
            parts.append(_slug(str(value.get("name") or "_".join(f"{k}-{_short(v)}" for k, v in value.items()))))
        else:
            parts.append(f"{key.rsplit('.', 1)[-1]}-{_slug(_short(value))}")
    return "_".join(parts)


def _short(value: Any) -> str:
    if isinstance(value, dict):
        train = value.get("train")
        return str(train if isinstance(train, str) else "+".join(f"{k}{v}" for k, v in value.items()))
    if isinstance(value, list):
        return "+".join(map(str, value))
    return str(value)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-")[:60] or "x"


def _describe(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items()) or "no sweep"
