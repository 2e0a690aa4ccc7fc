"""Typed, validated parameters: one object per experiment stage, loaded from YAML.

Every model forbids unknown keys. `load_yaml` turns pydantic's validation errors into
one `ParamsError` that names the file, the key, the bad value and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hbnb.errors import ParamsError, UnknownNameError
from hbnb.languages import canonical

STRATEGIES = ("x-x", "x-y", "hybrid", "en-en")


class Params(BaseModel):
    """Base of every parameter block: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _canon(code: str) -> str:
    """canonical(), as the ValueError pydantic reports against the key."""
    try:
        return canonical(code)
    except UnknownNameError as exc:
        raise ValueError(str(exc)) from None


def _canonical_list(codes: list[str] | None) -> list[str] | None:
    return None if codes is None else [_canon(c) for c in codes]


class BatchingParams(Params):
    """How training batches are drawn (the method's X-X, X-Y and hybrid strategies)."""

    strategy: Literal["x-x", "x-y", "hybrid", "en-en"] = "hybrid"
    languages: list[str] | None = Field(None, description="training languages; default: all in the data")
    pairs: Literal["all"] | int | list[str] = Field(
        "all", description="cross-lingual pairs: 'all' ordered pairs, k sampled pairs, or a list like ['en-de']"
    )
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="share of monolingual batches in hybrid")
    batch_size: int = Field(32, ge=2)
    train_items: int | None = Field(None, ge=1, description="use this many items (sampled with the seed)")
    seed: int = 0
    positive: Literal["sentence", "sentence+paragraph"] = "sentence"
    language_weights: dict[str, float] | None = Field(None, description="X-X language weights; default uniform")
    incomplete: Literal["drop", "refill"] = Field(
        "drop", description="when items left cannot fill a batch: drop them, or refill from other items"
    )
    hard_negatives: bool = False

    @field_validator("languages")
    @classmethod
    def _languages(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and len(v) == 0:
            raise ValueError("give at least one language, or leave it out for all")
        return _canonical_list(v)

    @field_validator("pairs")
    @classmethod
    def _pairs(cls, v: Any) -> Any:
        if isinstance(v, int) and v < 1:
            raise ValueError("k must be at least 1")
        if isinstance(v, list):
            out = []
            for pair in v:
                parts = str(pair).split("-")
                if len(parts) != 2 or parts[0] == parts[1]:
                    raise ValueError(f"{pair!r} is not a pair of two different languages like 'en-de'")
                out.append(f"{_canon(parts[0])}-{_canon(parts[1])}")
            return out
        return v

    @field_validator("language_weights")
    @classmethod
    def _weights(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return None
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("weights must be >= 0 and not all 0")
        return {_canon(k): float(w) for k, w in v.items()}


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
            lines.append(f"  {key}: {given!r}: {err['msg']}")
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
