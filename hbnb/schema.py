"""The base of every parameter block and how a block is validated and read from YAML.

Every model forbids unknown keys, non-finite floats (`.inf`, `.nan`) and booleans where a
number is expected (YAML's `true` is not 1). `load_yaml` turns pydantic's validation errors
into one `ParamsError` that names the file, the key, the bad value and what is allowed.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from hbnb.errors import ParamsError, UnknownNameError
from hbnb.languages import canonical

# sane maxima: a value beyond these is a typo (1e29 steps), not an experiment
MAX_STEPS = 10_000_000
MAX_COUNT = 100_000_000
MAX_BATCH = 65_536
MAX_SEED = 2**32 - 1  # numpy's legacy seeding (used by the trainer) takes at most 32 bits


class Params(BaseModel):
    """Base of every parameter block: unknown keys are errors, values are immutable, numbers
    are finite and never booleans."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and _bool_given_for_number(field.annotation, value):
            raise ValueError("a boolean where a number is expected; write the number")
        return value


def _bool_given_for_number(annotation: Any, value: Any) -> bool:
    """True where `value` (or an item or value of it) is a bool and the annotation there takes
    numbers but no bool (pydantic's lax mode would read it as 0 or 1)."""
    if isinstance(value, bool):
        members = _members(annotation)
        return bool(members & {int, float}) and bool not in members
    origin = typing.get_origin(annotation)
    if isinstance(value, dict) and origin is dict:
        return any(_bool_given_for_number(typing.get_args(annotation)[1], v) for v in value.values())
    if isinstance(value, list) and origin is list:
        return any(_bool_given_for_number(typing.get_args(annotation)[0], v) for v in value)
    if isinstance(value, (dict, list)) and origin in (typing.Union, types.UnionType):
        return any(
            typing.get_origin(a) in (dict, list) and _bool_given_for_number(a, value)
            for a in typing.get_args(annotation)
        )
    return False


def _members(annotation: Any) -> set[Any]:
    """The plain types a (possibly union or Annotated) annotation accepts."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_members(a) for a in typing.get_args(annotation)))
    return {annotation}


def canon(code: str) -> str:
    """canonical(), as the ValueError pydantic reports against the key."""
    try:
        return canonical(code)
    except UnknownNameError as exc:
        raise ValueError(str(exc)) from None


def canonical_pair(pair: str) -> str:
    """ "a-b" with canonical codes, as the ValueError pydantic reports against the key."""
    parts = str(pair).split("-")
    if len(parts) != 2 or parts[0] == parts[1]:
        raise ValueError(f"{pair!r} is not a pair of two different languages like 'en-de'")
    return f"{canon(parts[0])}-{canon(parts[1])}"


def canonical_list(codes: list[str] | None) -> list[str] | None:
    return None if codes is None else [canon(c) for c in codes]


P = TypeVar("P", bound=Params)


def validate(model: type[P], data: dict[str, Any], source: str) -> P:
    """Build a parameter object, or raise one ParamsError listing every problem by key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ParamsError(format_errors(exc, source)) from None


def format_errors(exc: ValidationError, source: str) -> str:
    """One line per problem: where, which key, the value given, what is allowed."""
    lines = [f"{source}: {exc.error_count()} invalid parameter(s)"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        given = err.get("input")
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (value {given!r}); check its spelling against the documented keys")
        elif err["type"] == "literal_error":
            allowed = err.get("ctx", {}).get("expected", "")
            lines.append(f"  {key}: {given!r} is not allowed; allowed: {allowed}")
        else:
            lines.append(f"  {key}: {given!r}: {err['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def load_yaml(model: type[P], path: Path | str) -> P:
    """Read a YAML parameter file into `model`; errors name the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: no such parameter file") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of keys to values at the top level, got {type(data).__name__}")
    return validate(model, data, str(path))


def drop_false(data: dict[str, Any], key: str) -> dict[str, Any]:
    if data.get(key) is False:
        data.pop(key)
    return data


RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,199}$")
RESERVED_NAMES = ("data", "report", "archive")  # the data and report stages' folders, and set-aside runs


def run_name_problem(name: object) -> str | None:
    """Why `name` cannot name a run's folder inside an experiment folder, or None.

    A run's folder sits beside the data, report and baseline folders: a name must not climb out
    ('..'), hide ('.x'), or take one of theirs, on case-insensitive file systems too.
    """
    if not isinstance(name, str) or not RUN_NAME.match(name):
        return (
            "is not a safe folder name: use letters, digits and _ . + - (starting with a letter or digit, "
            "at most 200 characters)"
        )
    if name.lower() in RESERVED_NAMES or name.lower().startswith("baseline"):
        return f"is reserved for the experiment's own folders ({', '.join(RESERVED_NAMES)}, baseline-*)"
    return None


def check_sweep(sweep: dict[str, list[Any]], sweepable: tuple[str, ...]) -> dict[str, list[Any]]:
    """A `sweep:` block: non-empty lists of sweepable keys; variants are mappings of them with safe names."""
    for key, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"sweep.{key} must be a non-empty list of values")
        if key == "variant":
            names: dict[str, str] = {}
            for variant in values:
                if not isinstance(variant, dict) or not set(variant) - {"name"}:
                    raise ValueError("each sweep.variant is a mapping of parameter paths to values (and a name)")
                if "name" in variant:
                    check_variant_name(variant["name"], names)
                bad = [k for k in variant if k != "name" and k not in sweepable]
                if bad:
                    raise ValueError(f"sweep.variant sets {', '.join(bad)}; sweepable: {', '.join(sweepable)}")
        elif key not in sweepable:
            raise ValueError(f"cannot sweep {key!r}; sweepable: variant, {', '.join(sweepable)}")
    return sweep


def check_variant_name(name: object, seen: dict[str, str]) -> None:
    """A sweep variant's name names a safe folder no other variant of the file names (ignoring case)."""
    problem = run_name_problem(name)
    if problem:
        raise ValueError(f"sweep.variant name {name!r} {problem}")
    key = str(name).lower()
    if key in seen:
        raise ValueError(
            f"sweep.variant names {seen[key]!r} and {name!r} name one folder; give every variant its own name"
        )
    seen[key] = str(name)
