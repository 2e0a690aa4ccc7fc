"""The `AlignedData` block: training data as one data set per language (read by `hbnb.data.catalog`)."""

from __future__ import annotations

from pydantic import Field, field_validator

from hbnb.schema import MAX_COUNT, Params, canon


class AlignedData(Params):
    """Training data as one data set per language whose rows are translations of each other
    (row i of every language is item i), as translated corpora such as mMARCO are shipped."""

    sources: dict[str, str] = Field(description="language -> a hub name (optionally 'name:config') or a local path")
    split: str = "train"
    columns: dict[str, str] = Field(
        default_factory=lambda: {"query": "question", "positive": "passage"},
        description="their column -> question, passage or negative",
    )
    limit: int | None = Field(None, ge=1, le=MAX_COUNT, description="use the first N rows of each language")

    @field_validator("sources")
    @classmethod
    def _languages(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) < 1:
            raise ValueError("give at least one language")
        return {canon(k): src for k, src in v.items()}

    @field_validator("columns")
    @classmethod
    def _targets(cls, v: dict[str, str]) -> dict[str, str]:
        targets = set(v.values())
        if not {"question", "passage"} <= targets or not targets <= {"question", "passage", "negative"}:
            raise ValueError("map their columns onto question and passage (and optionally negative)")
        return v
