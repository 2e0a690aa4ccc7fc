"""Loading the encoders hbnb trains and scores: built-in offline models, local folders, hub ids.

Every model comes back as a `SentenceTransformer` whose `prompts` carry its query and
passage prefixes, so `model.encode_query` / `model.encode_document` (sentence-transformers'
own mechanism, prompt names "query" and "document") add them and `prefixes(model)` reads them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from sentence_transformers import SentenceTransformer
from torch import nn

from hbnb.errors import ModelNotFoundError, UnknownNameError, UntrustedCodeError
from hbnb.models import e5
from hbnb.models.usem import USEMultilingual

BUILTIN_MODELS: tuple[str, ...] = ("use-m", "me5-small")
_HUB_ID = re.compile(r"[\w.-]+(?:/[\w.-]+)?")
_LAYERS = re.compile(r"(?P<base>.+):layers=(?P<layers>\d+)")
_E5_NAME = re.compile(r"(?:^|[^a-z0-9])m?e5(?:[^a-z0-9]|$)")
# Names sentence-transformers' encode_document tries, in its order.
_DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")
_HUB_PROBE_TIMEOUT_S = 5.0
_ACCEPTED = (
    '"use-m", "me5-small", a local folder holding a sentence-transformers model, '
    "or a Hugging Face hub id when a hub is reachable"
)

__all__ = [
    "BUILTIN_MODELS",
    "Prefixes",
    "USEMultilingual",
    "freeze_word_embeddings",
    "load",
    "parameter_counts",
    "prefixes",
    "prepare",
    "split_spec",
    "truncate_layers",
]


@dataclass(frozen=True)
class Prefixes:
    """The text a model expects before queries and before passages ("" when none)."""

    query: str
    passage: str


def load(spec: str, *, device: str | None = None, trust_remote_code: bool = False) -> SentenceTransformer:
    """A model by spec: "use-m", "me5-small", a local sentence-transformers folder or a hub id,
    optionally with ":layers=N" (the first N transformer layers: `truncate_layers`).

    No code from a model folder runs unless `trust_remote_code` (hbnb's own use-m class excepted).
    Raises ModelNotFoundError when the spec cannot be loaded offline or from a reachable hub, and
    UntrustedCodeError when a folder would run its own code without `trust_remote_code`.
    """
    base, layers = split_spec(spec)
    if layers is not None:
        return truncate_layers(load(base, device=device, trust_remote_code=trust_remote_code), layers, spec)
    if spec == "use-m":
        return SentenceTransformer(modules=[USEMultilingual.from_wheel()], device=device)
    if spec == e5.NAME:
        return SentenceTransformer(str(e5.ensure_built()), device=device, local_files_only=True)
    if Path(spec).expanduser().is_dir():
        model = _load_folder(spec, device, trust_remote_code)
    elif _is_path_like(spec):
        raise ModelNotFoundError(f"model {spec!r}: no such folder. Accepted: {_ACCEPTED}.")
    else:
        model = _load_hub(spec, device, trust_remote_code)
    return _with_prefixes(model, spec)


def split_spec(spec: str) -> tuple[str, int | None]:
    """(the model spec, N) of "spec:layers=N"; (spec, None) without the option."""
    m = _LAYERS.fullmatch(spec)
    return (m["base"], int(m["layers"])) if m else (spec, None)


def truncate_layers(model: SentenceTransformer, n: int, spec: str = "") -> SentenceTransformer:
    """Keep the first n layers of the model's transformer encoder (layer truncation: a smaller
    encoder of the same family, embeddings and pooling unchanged); the config says n, so a saved
    copy reloads with n layers."""
    transformer = model.transformers_model
    layers = getattr(getattr(transformer, "encoder", None), "layer", None)
    if layers is None:
        raise UnknownNameError(
            f"model {spec!r}: ':layers=N' truncates a transformer encoder (BERT, XLM-R, E5); "
            f"{type(model[0]).__name__} has none to truncate"
        )
    if not 1 <= n <= len(layers):
        raise UnknownNameError(f"model {spec!r}: layers={n}, but it has {len(layers)}; allowed 1..{len(layers)}")
    transformer.encoder.layer = nn.ModuleList(list(layers)[:n])
    transformer.config.num_hidden_layers = n
    return model


def parameter_counts(model: SentenceTransformer) -> dict[str, int]:
    """Total parameters and non-embedding ones (without token, position and type embedding tables,
    as scaling studies count model size)."""
    total = sum(p.numel() for p in model.parameters())
    embedding = sum(p.numel() for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters())
    return {"total": int(total), "non_embedding": int(total - embedding)}


def prefixes(model: SentenceTransformer) -> Prefixes:
    """The query and passage prefixes that `encode_query` / `encode_document` prepend."""
    prompts = model.prompts
    passage = next((prompts[name] for name in _DOCUMENT_PROMPT_NAMES if name in prompts), "")
    return Prefixes(query=prompts.get("query") or "", passage=passage or "")


def freeze_word_embeddings(model: SentenceTransformer) -> int:
    """Stop training the word-embedding table (most of the weights); returns how many were frozen.

    It makes CPU training practical: no gradient or optimiser state for the largest matrix.
    """
    weight = _word_embeddings(model).weight
    weight.requires_grad_(False)
    return weight.numel()


def prepare(specs: Iterable[str] = (e5.NAME,)) -> dict[str, Path | None]:
    """Build the caches of built-in models ahead of time; the cached folder, or None if it needs none."""
    built: dict[str, Path | None] = {}
    for spec in specs:
        if split_spec(spec)[0] == e5.NAME:
            built[spec] = e5.ensure_built()
        elif spec == "use-m":
            built[spec] = None  # read straight from the installed wheel
        else:
            raise UnknownNameError(f"cannot prepare model {spec!r}: only the built-in {BUILTIN_MODELS} are cached.")
    return built


def _word_embeddings(model: SentenceTransformer) -> nn.Embedding:
    first = model[0]
    if isinstance(first, USEMultilingual):
        return first.word_embeddings
    transformer = model.transformers_model
    if transformer is None:
        raise TypeError(f"{type(first).__name__} has no word-embedding table that hbnb knows how to freeze.")
    return transformer.get_input_embeddings()


def _is_path_like(spec: str) -> bool:
    """A spec that can only mean a folder: hub ids are `name` or `owner/name` of [A-Za-z0-9_.-]."""
    return spec.startswith((".", "~", "/")) or _HUB_ID.fullmatch(spec) is None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


_USEM_CLASS = f"{USEMultilingual.__module__}.{USEMultilingual.__name__}"


def foreign_code(folder: Path) -> list[str]:
    """What in a model folder would run code from the folder: module classes outside
    sentence-transformers and hbnb's use-m, and configs whose `auto_map` names the folder's own
    Python (transformers imports it under `trust_remote_code`). Each as "FILE: what"."""
    found = [
        f"{folder / 'modules.json'}: module class {kind!r}"
        for kind in _module_classes(folder)
        if kind != _USEM_CLASS and not kind.startswith("sentence_transformers.")
    ]
    for config in sorted(folder.rglob("*.json")):
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("auto_map"):
            found.append(f"{config}: auto_map {data['auto_map']}")
    return found


def _module_classes(folder: Path) -> list[str]:
    """The module class names a folder's modules.json lists ([] when it has none or it does not read)."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [m.get("type", "") if isinstance(m, dict) else "" for m in modules] if isinstance(modules, list) else []


def _open(
    name: str, device: str | None, *, local_files_only: bool, trust_remote_code: bool = False
) -> SentenceTransformer:
    """`SentenceTransformer(name)`, running no code from a local folder unless the user allowed it.

    sentence-transformers 6 asks for `trust_remote_code=True` before it imports any module class
    outside its own package, and passes the flag on to transformers, which would then also run a
    config's `auto_map` code. hbnb gives the flag for its own use-m class only when nothing else in
    the folder would run; a folder that needs more is refused, naming the file and the flag.
    """
    folder = Path(name).expanduser()
    if folder.is_dir() and not trust_remote_code:
        foreign = foreign_code(folder)
        if foreign:
            raise UntrustedCodeError(
                f"model folder {folder} would run its own code ({'; '.join(foreign)}); hbnb runs no code from a "
                "model folder unasked. If you trust it, allow it: `hbnb evaluate --trust-remote-code`, or "
                "`trust_remote_code: true` in the parameter file (SentenceTransformer(..., trust_remote_code=True))"
            )
        trust_remote_code = _USEM_CLASS in _module_classes(folder)  # hbnb's own class, and nothing foreign
    return SentenceTransformer(
        name, device=device, local_files_only=local_files_only, trust_remote_code=trust_remote_code
    )


def _load_folder(spec: str, device: str | None, trust_remote_code: bool) -> SentenceTransformer:
    _check_adapter_base(Path(spec).expanduser())
    try:
        return _open(str(Path(spec).expanduser()), device, local_files_only=True, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ModelNotFoundError(
            f"folder {spec!r} holds no loadable sentence-transformers model ({error}). Accepted: {_ACCEPTED}."
        ) from error


def _check_adapter_base(folder: Path) -> None:
    """A folder holding a LoRA adapter (adapter_config.json: `training.lora`) loads onto its base model, named by
    path or hub id; a missing me5-small build is rebuilt, any other missing base folder is refused by name."""
    try:
        base = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))["base_model_name_or_path"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # no adapter (or none readable: sentence-transformers says what is wrong)
    if not isinstance(base, str) or not _is_path_like(base) or Path(base).expanduser().is_dir():
        return
    if Path(base).name.startswith(f"{e5.NAME}-") and Path(base) == e5.cached_folder(e5.source_file()):
        e5.ensure_built()  # the hbnb cache was cleared: the same build comes back at the same place
        return
    where = f"; me5-small is built here at {e5.ensure_built()}" if Path(base).name.startswith(f"{e5.NAME}-") else ""
    raise ModelNotFoundError(
        f"model folder {folder} holds a LoRA adapter whose base model {base} is missing (adapter_config.json, "
        f"base_model_name_or_path){where}; put the base model there, or set that key to where it is"
    )


def _load_hub(spec: str, device: str | None, trust_remote_code: bool) -> SentenceTransformer:
    """From the local hub cache if it is there, else from the hub after a quick reachability probe."""
    try:
        return _open(spec, device, local_files_only=True, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as cached_error:
        if _hub_offline():
            raise ModelNotFoundError(
                f"model {spec!r} is not a local folder and not in the hub cache, and HF_HUB_OFFLINE is set. "
                f"Accepted: {_ACCEPTED}."
            ) from cached_error
    try:
        HfApi().model_info(spec, timeout=_HUB_PROBE_TIMEOUT_S)
    except HfHubHTTPError:
        pass  # the hub answered; sentence-transformers resolves the name and reports what is missing
    except Exception as error:  # noqa: BLE001 - any transport failure means the hub is unreachable
        raise ModelNotFoundError(
            f"model {spec!r} is not a local folder and the Hugging Face hub is unreachable ({error}). "
            f"Accepted: {_ACCEPTED}."
        ) from error
    try:
        return _open(spec, device, local_files_only=False, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ModelNotFoundError(
            f"model {spec!r} could not be loaded from the hub ({error}). Accepted: {_ACCEPTED}."
        ) from error


def _with_prefixes(model: SentenceTransformer, spec: str) -> SentenceTransformer:
    """Make the model's saved passage prompt the one `encode_document` uses, and give E5-family
    models without saved prompts "query: " / "passage: " (not -instruct ones: they take instructions).

    sentence-transformers always defines a "document" prompt ("" unless saved) and
    `encode_document` takes it before "passage" or "corpus", so a saved "passage" prompt
    would be silently skipped; it is copied to "document".
    """
    prompts = model.prompts
    if not prompts.get("document"):
        prompts["document"] = next((prompts[n] for n in _DOCUMENT_PROMPT_NAMES if prompts.get(n)), "")
    name = spec.rstrip("/").rsplit("/", 1)[-1].lower()
    if _E5_NAME.search(name) and "instruct" not in name and not (prompts.get("query") or prompts["document"]):
        prompts.update(e5.E5_PROMPTS)
    return model
