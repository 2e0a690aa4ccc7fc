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
from hbnb.params import (
    AlignedData,
    DataParams,
    ExperimentParams,
    TrainParams,
    format_errors,
    load_yaml,
)
from hbnb.schema import run_name_problem


@dataclass(frozen=True)
class RunSpec:
    """One trained run of an experiment: its name, swept values and complete training parameters."""

    name: str
    values: dict[str, Any]  # the swept values that define this run
    data: DataParams
    train: TrainParams  # output_dir is relative to the run folder
    group: str = ""  # the name without the seed: runs of one group are replicates

    @property
    def model(self) -> str:
        return self.train.model

    @property
    def seed(self) -> int:
        return self.train.seed


@dataclass(frozen=True)
class Baseline:
    """The untuned model of a run, evaluated on the same data sets."""

    name: str
    model: str
    data: DataParams


def load(path: Path | str) -> ExperimentParams:
    """Read and validate an experiment file (every run of its grid, and its claims, are checked too)."""
    params = load_yaml(ExperimentParams, path)
    check_claims(params, runs(params, source=str(path)), source=str(path))
    return params


def check_claims(params: ExperimentParams, specs: list[RunSpec], source: str) -> None:
    """Each claim names strategies that runs of the file train (or two of its seed groups) and a
    figure an evaluation set reports."""
    from hbnb.evaluation.tasks import get_task
    from hbnb.experiment.claims import expand

    strategies = list(dict.fromkeys(s.train.batching.strategy for s in specs))
    groups = list(dict.fromkeys(s.group for s in specs))
    figures = {
        name
        for spec in specs
        for dataset in spec.data.evaluate
        for h in get_task(dataset).headlines
        for name in (h.key, h.key.removesuffix("_map"))
    }
    for i, claim in enumerate(expand(params.claims)):
        missing = [x for x in claim.strategies if x not in strategies]
        by_group = claim.relation != "best" and all(x in groups for x in missing)
        if missing and not by_group:
            raise ParamsError(
                f"{source}: claims[{i}] ({claim.text!r}) names {missing[0]!r}, which is neither a strategy that a "
                f"run of this file trains nor one of its seed groups; strategies here: {', '.join(strategies)}; "
                f"groups: {', '.join(groups)}" + ("; 'best' ranks strategies only" if claim.relation == "best" else "")
            )
        if missing and not all(x in groups for x in claim.strategies):
            raise ParamsError(
                f"{source}: claims[{i}] ({claim.text!r}) compares a strategy with a seed group; name two strategies "
                f"or two groups ({', '.join(groups)})"
            )
        if claim.relation == "best" and len(strategies) < 2:
            raise ParamsError(
                f"{source}: claims[{i}] ({claim.text!r}): 'best' needs at least two strategies in the sweep"
            )
        if claim.figure not in figures:
            raise ParamsError(
                f"{source}: claims[{i}] ({claim.text!r}) names figure {claim.figure!r}, which no evaluation set "
                f"of this file reports; figures here: {', '.join(sorted(figures))}"
            )


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
        group = group_name(values)
        try:
            point = ExperimentParams.model_validate(merged)
            train = TrainParams.model_validate(
                {
                    **point.training.model_dump(),
                    "model": point.model,
                    "trust_remote_code": point.trust_remote_code,
                    "data": point.data.train,
                    "batching": point.batching.model_dump(),
                    "output_dir": "train",
                }
            )
        except ValidationError as exc:
            raise ParamsError(format_errors(exc, f"{source}, run {name} ({_describe(values)})")) from None
        specs.append(RunSpec(name, values, point.data, train, group))
    folders: dict[str, RunSpec] = {}
    for spec in specs:
        problem = run_name_problem(spec.name)
        if problem:
            raise ParamsError(f"{source}: run name {spec.name!r} ({_describe(spec.values)}) {problem}; rename it")
        other = folders.get(spec.name.lower())
        if other is not None:
            raise ParamsError(
                f"{source}: runs {_describe(other.values)} and {_describe(spec.values)} would share the folder "
                f"{spec.name!r}; give the variants distinct names (sweep.variant name)"
            )
        folders[spec.name.lower()] = spec
    return specs


def designs(specs: list[RunSpec], source: str, unreachable_ok: bool = False) -> dict[str, dict[str, Any]]:
    """Each run's design resolved against its training data (languages, pairs, items, steps).

    This is where a strategy that cannot run under a swept value (hybrid with one
    language, more pairs than the languages allow, more items than the data holds) is
    refused, naming the file, the run and the key, before any stage runs. No model is
    loaded; runs with the same data, batching and budget are resolved once. With
    `unreachable_ok`, a run whose data cannot be fetched here (a hub without network) is
    resolved from its parameters alone and marked `"data_checked": False`.
    """
    from hbnb.errors import DataFileError
    from hbnb.training.trainer import resolve

    check_evaluation_languages(specs, source, unreachable_ok=unreachable_ok)
    out: dict[str, dict[str, Any]] = {}
    seen: dict[str, dict[str, Any]] = {}
    for spec in specs:
        key = spec.train.model_dump_json(include={"data", "batching", "budget", "epochs", "max_steps", "validation",
                                                  "gradient_accumulation_steps", "seed", "code_switching",
                                                  "bitext"})  # fmt: skip
        if key not in seen:
            try:
                seen[key] = {**resolve(spec.train), "data_checked": True}
            except ParamsError as exc:
                raise ParamsError(f"{source}, run {spec.name} ({_describe(spec.values)}): {exc}") from None
            except DataFileError as exc:
                if not unreachable_ok:
                    raise
                seen[key] = _design_without_data(spec.train, str(exc))
        out[spec.name] = seen[key]
    return out


def check_evaluation_languages(specs: list[RunSpec], source: str, unreachable_ok: bool = False) -> None:
    """`data.langs` names only languages (WMT22: directions) its evaluation set has, so a typo is refused
    before the baseline evaluation runs rather than in an evaluation stage after training."""
    from hbnb.data import bitext
    from hbnb.errors import DataFileError
    from hbnb.evaluation.tasks import BitextTask, get_task

    checked: set[tuple[str, tuple[str, ...]]] = set()
    for spec in specs:
        for name, langs in spec.data.langs.items():
            if (name, tuple(langs)) in checked:
                continue
            checked.add((name, tuple(langs)))
            task = get_task(name)
            try:
                wmt = isinstance(task, BitextTask) and name == "wmt22"
                allowed = bitext.wmt22_pairs() if wmt else task.languages()
            except DataFileError:
                if unreachable_ok:
                    continue
                raise
            stray = [x for x in langs if x not in allowed and _canonical_or_none(x) not in allowed]
            if stray or not langs:
                raise ParamsError(
                    f"{source}, run {spec.name}: data.langs.{name} = {langs}: "
                    + (f"{', '.join(map(repr, stray))} not in {name}" if stray else "an empty list")
                    + f"; allowed: {', '.join(allowed)}"
                )


def _canonical_or_none(code: str) -> str | None:
    from hbnb.errors import UnknownNameError
    from hbnb.languages import canonical

    try:
        return canonical(code)
    except UnknownNameError:
        return None


def _design_without_data(train: TrainParams, reason: str) -> dict[str, Any]:
    """What the parameters alone say about a run's design (its data could not be read)."""
    from hbnb.training.pairs import design_language_order, design_pair_order

    b = train.batching
    given = b.languages or (list(train.data.sources) if isinstance(train.data, AlignedData) else None)
    languages = list(given) if given else None
    if languages and b.n_languages:
        languages = design_language_order(b, languages)[: b.n_languages]
    pairs: list[str] | None = []
    if b.strategy not in ("x-x", "en-en"):
        if isinstance(b.pairs, list):
            pairs = list(b.pairs)
        elif languages is None:
            pairs = None
        elif b.pairs == "all":
            pairs = [f"{x}-{y}" for x in languages for y in languages if x != y]
        else:
            chosen = [p for p in design_pair_order(b, languages)][: b.pairs]
            both = b.pair_count == "unordered"
            pairs = [f"{x}-{y}" for x, y in chosen] + ([f"{y}-{x}" for x, y in chosen] if both else [])
    return {
        "languages": languages,
        "pairs": pairs,
        "train_items": None,
        "steps": train.max_steps if train.budget == "steps" else None,
        "epochs": None,
        "budget": train.budget,
        "data_checked": False,
        "note": f"not checked against the data: {reason}",
    }


def plan_json(params: ExperimentParams, source: str) -> list[dict[str, Any]]:
    """`hbnb run --plan`: every run as name, group, seed and its fully resolved parameters."""
    specs = runs(params, source)
    check_claims(params, specs, source)
    resolved = designs(specs, source, unreachable_ok=True)
    planned: list[dict[str, Any]] = []
    for base in baselines(params, specs):
        planned.append(
            {
                "name": base.name,
                "group": base.name,
                "seed": None,
                "baseline": True,
                "params": {"model": base.model, "data": base.data.model_dump(mode="json")},
            }
        )
    for spec in specs:
        design = resolved[spec.name]
        train = spec.train.model_dump(mode="json", exclude={"output_dir", "model", "data", "batching"})
        batching = {**spec.train.batching.model_dump(mode="json"), "languages": design["languages"]}
        batching["pairs"] = design["pairs"]
        train.update(max_steps=design["steps"], epochs=design["epochs"])
        planned.append(
            {
                "name": spec.name,
                "group": spec.group,
                "seed": spec.seed,
                "baseline": False,
                "values": spec.values,
                "params": {
                    "model": spec.model,
                    "seed": spec.seed,
                    "data": spec.data.model_dump(mode="json"),
                    "training": train,
                    "batching": batching,
                },
                "train_items": design["train_items"],
                "data_checked": design["data_checked"],
                **({"note": design["note"]} if "note" in design else {}),
            }
        )
    return planned


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


def group_name(values: dict[str, Any]) -> str:
    """A run's group: its name without the seed (runs that differ only in seed are replicates)."""
    rest = {k: v for k, v in values.items() if k != "seed"}
    return _run_name(rest) if rest else "run"


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
