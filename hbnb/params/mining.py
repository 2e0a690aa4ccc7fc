"""The `batching.mining:` block: how `batching.hard_negatives: mined` mines its negatives.

The mining itself is `hbnb.training.mining`; this block sits here, beside the schema,
beside the schema that uses it, without importing the training package.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from hbnb.schema import Params, canon


class MiningParams(Params):
    """How `batching.hard_negatives: mined` mines its negatives (`hbnb.training.mining`): sentence-transformers'
    `mine_hard_negatives` ranks, per training row, the candidate passages of the training data by the model's
    similarity to the question; the candidates ranked range_min..range_max, less those within a margin of the
    positive, give the row's top num_negatives negatives. Each training example uses one of them."""

    model: str | None = Field(
        None, description="the model that mines: null for the model being trained (before training), or a model spec"
    )
    range_min: int = Field(0, ge=0, le=100_000, description="skip the candidates ranked above this (0: none)")
    range_max: int = Field(50, ge=1, le=100_000, description="consider the candidates ranked up to this")
    margin: float | None = Field(
        None,
        ge=0,
        le=2,
        description="absolute margin: keep a candidate only if its similarity is this far below "
        "the positive's (sentence-transformers' absolute_margin); null: no margin",
    )
    relative_margin: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="relative margin: keep a candidate only if its similarity is below the "
        "positive's by this share of it (0.05: NV-Retriever's choice); null: no margin",
    )
    num_negatives: int = Field(
        3,
        ge=1,
        le=1000,
        description="negatives kept per (item, language) row; each training example uses one of "
        "them, chosen from batching.seed and the example",
    )
    language: str = Field(
        "same", description="the negatives' language: same (the positive's), or a language code of the data"
    )

    @field_validator("language")
    @classmethod
    def _language(cls, v: str) -> str:
        return v if v == "same" else canon(v)

    @model_validator(mode="after")
    def _range(self) -> MiningParams:
        if self.range_min >= self.range_max:
            raise ValueError(f"range_min ({self.range_min}) must be below range_max ({self.range_max})")
        if self.num_negatives > self.range_max - self.range_min:
            raise ValueError(
                f"num_negatives ({self.num_negatives}) is more than the {self.range_max - self.range_min} candidates "
                f"ranked range_min..range_max ({self.range_min}..{self.range_max}); raise range_max"
            )
        return self
