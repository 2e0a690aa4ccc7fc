"""LoRA adapters for a training run (`training.lora`), the way sentence-transformers saves and loads them.

`add_lora` wraps the model's Hugging Face transformer in a peft `PeftModel` with a LoRA
`FEATURE_EXTRACTION` adapter, so only the adapters train. Saving the `SentenceTransformer` then
writes what sentence-transformers' PEFT integration writes: `adapter_config.json` and
`adapter_model.safetensors` (the adapter only, naming its base model by path or hub id) beside the
tokenizer, pooling and prompts; `SentenceTransformer(folder)` (and `hbnb.models.load`) loads the base
and puts the adapter on it. The wrapping goes through peft itself rather than `model.add_adapter`
(transformers' integration), which refuses peft releases older than the one it was written against.

`LoraTrainer` reloads a checkpoint's adapter weights in place when a run resumes and when it ends
on its best validation checkpoint: sentence-transformers' own reload rebuilds the whole model from
the checkpoint folder and copies its weights by name, which the wrapped model does not share.

use-m is excluded: its encoder is hbnb's own torch port (`hbnb.models.usem`), not a transformers
model peft can adapt; `TrainParams` refuses that pairing, and `add_lora` any model without one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
from torch import nn

from hbnb.errors import ParamsError
from hbnb.params.lora import LoraParams

ADAPTER_NAME = "default"  # peft's name for a model's only adapter


def add_lora(model: SentenceTransformer, lora: LoraParams, spec: str) -> None:
    """Put a fresh LoRA adapter on `model`'s transformer (in place); every other weight stops training.

    Raises ParamsError when the model has no Hugging Face transformer (use-m) or when the target modules
    are not in it (or, left out, when peft knows no default for its family), naming the modules it has.
    """
    from peft import LoraConfig, TaskType, get_peft_model

    module = _transformer_module(model)
    if module is None or not model.has_peft_compatible_model():
        raise ParamsError(
            f"training.lora: model {spec!r} ({type(model[0]).__name__}) has no Hugging Face transformer for peft to "
            "adapt (use-m is hbnb's own port); train without lora, or pick a transformers model (me5-small, a hub id)"
        )
    base = module.model
    config = LoraConfig(
        task_type=TaskType.FEATURE_EXTRACTION,
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
    )
    try:
        wrapped = get_peft_model(base, config)
    except ValueError as error:
        given = f"= {lora.target_modules}" if lora.target_modules else f"(peft's default for {base.config.model_type})"
        raise ParamsError(
            f"training.lora.target_modules {given} does not fit model {spec!r} ({error}); its linear modules are: "
            f"{', '.join(linear_module_names(base))}"
        ) from None
    name = wrapped.peft_config[ADAPTER_NAME].base_model_name_or_path
    if name and Path(name).expanduser().is_dir():  # a folder: by absolute path, so it reloads from anywhere
        wrapped.peft_config[ADAPTER_NAME].base_model_name_or_path = str(Path(name).expanduser().resolve())
    module.model = wrapped


def summary(model: SentenceTransformer) -> dict[str, Any] | None:
    """The run record's LoRA entry: rank, alpha, dropout, the modules adapted (resolved), the base model
    and the trainable parameters; None for a model without an adapter."""
    peft_model = _peft_model(model)
    if peft_model is None:
        return None
    config = peft_model.peft_config[ADAPTER_NAME]
    return {
        "r": config.r,
        "alpha": config.lora_alpha,
        "dropout": config.lora_dropout,
        "target_modules": sorted(config.target_modules),
        "base_model": config.base_model_name_or_path,
        "trainable_parameters": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
    }


def linear_module_names(model: nn.Module) -> list[str]:
    """The distinct last names of a model's linear layers (what LoRA target_modules match)."""
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, nn.Linear)})


class LoraTrainer(SentenceTransformerTrainer):
    """sentence-transformers' trainer for a model with a LoRA adapter: a checkpoint (to resume from, or the
    best one at the end) is read back as adapter weights into the model being trained."""

    def _load_from_checkpoint(self, checkpoint_path: str, model: nn.Module | None = None) -> None:
        from peft import set_peft_model_state_dict
        from peft.utils import load_peft_weights

        peft_model = _peft_model(self.model)
        if peft_model is None:  # not a LoRA run after all: sentence-transformers' own reload
            super()._load_from_checkpoint(checkpoint_path)
            return
        result = set_peft_model_state_dict(peft_model, load_peft_weights(checkpoint_path), ADAPTER_NAME)
        missing = [k for k in result.missing_keys if "lora_" in k]
        if missing:
            raise ParamsError(
                f"{checkpoint_path} holds no weights for {len(missing)} of this run's LoRA adapters (e.g. "
                f"{missing[0]}); it was saved with other training.lora settings: delete the output folder, start over"
            )


def _transformer_module(model: SentenceTransformer) -> Any:
    from sentence_transformers.base.modules import Transformer

    return next((m for m in model.modules() if isinstance(m, Transformer)), None)


def _peft_model(model: SentenceTransformer) -> Any:
    from peft import PeftModel

    module = _transformer_module(model)
    return module.model if module is not None and isinstance(module.model, PeftModel) else None
