"""The `training.lora:` block: LoRA adapters instead of training every weight.

The adapters themselves are `hbnb.training.lora`; this block sits here, beside the schema,
beside the schema that uses it, without importing the training package.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from hbnb.schema import Params


class LoraParams(Params):
    """LoRA adapters on a Hugging Face encoder (me5-small, hub models, their folders), through sentence-transformers'
    PEFT integration: only the adapters train, and the saved model is the adapter (adapter_config.json and its
    weights) over its base model. Not for use-m, whose encoder is hbnb's own port and not a transformers model."""

    r: int = Field(8, ge=1, le=4096, description="the rank of each adapter's update matrices")
    alpha: int = Field(16, ge=1, le=65_536, description="LoRA's scaling numerator: updates are scaled by alpha / r")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout on the adapters' input")
    target_modules: list[str] | None = Field(
        None,
        description="names of the linear modules to adapt (e.g. [query, key, value, dense]); default: peft's choice "
        "for the model family (BERT and XLM-R, so E5: query and value)",
    )

    @field_validator("target_modules")
    @classmethod
    def _modules(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        names = [name.strip() for name in v]
        if not names or any(not name for name in names) or len(set(names)) != len(names):
            raise ValueError(
                "give one or more distinct module names (e.g. [query, value]), or leave it out for peft's default"
            )
        return names
