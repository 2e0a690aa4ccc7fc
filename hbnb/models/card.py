"""Model cards of trained runs: sentence-transformers' own card, with hbnb's training design and results.

A model folder that `hbnb train` writes holds sentence-transformers' `README.md` model card
(its metadata, usage snippet, training data statistics, trainer hyper-parameters, loss
logs). hbnb fills the card data that card is built from (`fill_card_data`: training
languages, the training set's name, tags, the base model where it is a hub model) and adds
one section of its own between two markers (`write_card`; its markdown: `hbnb.models.card_sections`):

- training data and design: languages, cross-lingual pairs, items, steps, epochs;
- batch strategy and the realised batch mix (`batch_mix.json`: X-X vs X-Y batches,
  examples per language pair), code-switching and bitext where used;
- hyper-parameters (the resolved `params.yaml`);
- evaluation: per evaluation set, its headline figures (e.g. mono / cross / multilingual
  mAP, rank distance) with 95% intervals, read from `eval/<set>/metrics.parquet`; the
  same figures go into the card's `model-index` metadata, which the hub displays.

Training writes the card without evaluations (none exist yet); `hbnb push` rewrites the
section with the evaluations found by then (`hbnb.models.hub`). Rewriting replaces the
section between the markers and hbnb's `model-index` entries only, so the rest of the
card, and anything a user added outside the markers, stays.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from hbnb.errors import ModelNotFoundError
from hbnb.files import read_json, write_text
from hbnb.models.card_sections import END, START, dataset_title, headline_rows, languages_of, section, training_set

README = "README.md"
EVAL_TASK_NAME = "Multilingual retrieval (hbnb)"  # marks hbnb's entries in the card's model-index
TAGS = ("hbnb", "multilingual", "cross-lingual-retrieval")

# built-in models that are a hub model underneath (use-m is Google's TF-Hub model: no hub id)
BASE_MODELS = {"me5-small": "intfloat/multilingual-e5-small"}

_SNIPPET = re.compile(r'(model = SentenceTransformer\(")[^"]*(")')


@dataclass(frozen=True)
class TrainingRecord:
    """What a training output folder records: `params.yaml`, `run.json`, `batch_mix.json`, `augmentation.json`."""

    folder: Path
    params: dict[str, Any]
    run: dict[str, Any]
    mix: dict[str, Any]
    augmentation: dict[str, Any]


@dataclass(frozen=True)
class EvalRecord:
    """One evaluation set's results: its metrics table and `meta.json`."""

    dataset: str
    folder: Path
    table: pd.DataFrame
    meta: dict[str, Any]


def read_training(folder: Path | str) -> TrainingRecord:
    """The records of a finished training output folder; ModelNotFoundError when it has not finished."""
    folder = Path(folder)
    if not (folder / "run.json").is_file():
        raise ModelNotFoundError(
            f"{folder} holds no finished training (no run.json): run `hbnb train` on its params.yaml to finish it"
        )
    params = yaml.safe_load((folder / "params.yaml").read_text(encoding="utf-8")) or {}
    return TrainingRecord(
        folder,
        params,
        read_json(folder / "run.json"),
        read_json(folder / "batch_mix.json"),
        read_json(folder / "augmentation.json"),
    )


def read_evaluations(folders: Iterable[Path | str]) -> list[EvalRecord]:
    """The evaluations under `folders`: each either holds `metrics.parquet` (`hbnb evaluate --out`) or one
    folder per evaluation set (`<run>/eval/<set>/`); one record per set, the first found winning."""
    found: dict[str, EvalRecord] = {}
    for folder in folders:
        folder = Path(folder)
        files = [folder / "metrics.parquet"] if (folder / "metrics.parquet").is_file() else []
        for metrics in files or sorted(folder.glob("*/metrics.parquet")):
            table = pd.read_parquet(metrics)
            if table.empty:
                continue
            dataset = str(table.dataset.iloc[0])
            meta = read_json(metrics.parent / "meta.json")
            found.setdefault(dataset, EvalRecord(dataset, metrics.parent, table, meta))
    return list(found.values())


def base_model_id(spec: str) -> str | None:
    """The hub id of the model a run starts from, where there is one (`BASE_MODELS`, or a hub id spec)."""
    from hbnb.models import BUILTIN_MODELS, split_spec

    base, _ = split_spec(spec)
    if base in BASE_MODELS:
        return BASE_MODELS[base]
    if base in BUILTIN_MODELS or Path(base).expanduser().exists() or base.count("/") != 1:
        return None
    return base


def fill_card_data(model: Any, params: Any, languages: Sequence[str]) -> None:
    """Fill sentence-transformers' card data of `model` (a SentenceTransformer about to be saved after
    training with `params`, a TrainParams): languages, training set name, tags, base model, title."""
    data = model.model_card_data
    name, dataset_id = training_set(params.data)
    strategy = params.batching.strategy
    data.language = list(languages)
    data.model_name = f"{params.model} fine-tuned with {strategy} batches on {name}"
    data.task_name = "multilingual and cross-lingual retrieval (questions to answer passages in any language)"
    for entry in data.train_datasets or []:
        entry["name"] = name
        if dataset_id:
            entry["id"] = dataset_id
    if dataset_id and dataset_id not in data.datasets:
        data.datasets.append(dataset_id)
    data.add_tags([*TAGS, f"batch-strategy:{strategy}"])
    base = base_model_id(params.model)
    if base and not data.base_model:
        data.base_model = base


def set_examples(model: Any, index: Any) -> None:
    """The card's example texts (the hub widget and its usage snippet), chosen by hbnb before the trainer starts:
    a question (in English where the item has it), its answer in up to two other training languages, and
    another item's answer in the question's language. Otherwise sentence-transformers draws them at trainer
    start with Python's unseeded global random state (another card every run) and a progress bar that lands
    in each executed training notebook. `index` is the run's `PairIndex`."""
    active = [int(i) for i in index.active]
    langs = list(index.languages)
    for item in active:
        present = [y for y, lang in enumerate(langs) if index.row[item, y] >= 0]
        if len(present) < 2:
            continue
        q = langs.index("en") if "en" in langs and index.row[item, langs.index("en")] >= 0 else present[0]
        other = next((i for i in active if i != item and index.row[i, q] >= 0), None)
        if other is None:
            return
        rows = [index.row[item, y] for y in present if y != q][:2] + [index.row[other, q]]
        question = index.table[int(index.row[item, q])]["question"]
        answers = [index.table[int(r)]["sentence"] for r in rows]
        data = model.model_card_data
        data.widget = [{"source_sentence": question, "sentences": answers}]
        data.usage_examples = [question, *answers]
        return


def write_card(
    model_dir: Path | str,
    training: TrainingRecord | Path | str | None,
    evaluations: Sequence[EvalRecord] = (),
    model_id: str | None = None,
) -> Path:
    """Write hbnb's section (and model-index entries) into `model_dir/README.md`; returns the card's path.

    `training`: the training output folder or its record (None: a model folder without one; the
    section then holds the evaluations only). `model_id`: the hub repo the card is for (its usage
    snippet loads that id). A folder without a card gets a minimal one first.
    """
    from huggingface_hub import EvalResult, ModelCard

    path = Path(model_dir) / README
    record = read_training(training) if isinstance(training, (str, Path)) else training
    text = path.read_text(encoding="utf-8") if path.is_file() else _minimal_card(record)
    card = ModelCard(text)
    kept = [r for r in card.data.eval_results or [] if r.task_name != EVAL_TASK_NAME]
    ours = [
        EvalResult(
            task_type="information-retrieval",
            task_name=EVAL_TASK_NAME,
            dataset_type=ev.dataset,
            dataset_name=dataset_title(ev.dataset),
            dataset_config=",".join(languages_of(ev.table)) or None,
            metric_type=figure.key,
            metric_name=figure.label,
            metric_value=round(figure.value, 6),
        )
        for ev in evaluations
        for figure in headline_rows(ev)
    ]
    if kept or ours:
        card.data.eval_results = kept + ours
        card.data.model_name = card.data.model_name or _title(card.text) or "hbnb model"
    else:
        card.data.eval_results = None
    body = _replace_section(card.text, section(record, evaluations))
    if model_id:
        body = _SNIPPET.sub(lambda m: f"{m.group(1)}{model_id}{m.group(2)}", body, count=1)
    card.text = body
    return write_text(path, str(card))


# ----------------------------------------------------------------------------- helpers


def _replace_section(text: str, new: str) -> str:
    """The card's text with hbnb's section replaced, or inserted before "## Training Details" (else appended)."""
    start, end = text.find(START), text.find(END)
    if start != -1 and end > start:
        return text[:start] + new + text[end + len(END) :]
    anchor = text.find("\n## Training Details")
    if anchor == -1:
        return text.rstrip("\n") + "\n\n" + new + "\n"
    return text[: anchor + 1] + new + "\n\n" + text[anchor + 1 :]


def _minimal_card(record: TrainingRecord | None) -> str:
    title = "hbnb model"
    if record is not None:
        title = (
            f"{record.params.get('model')} fine-tuned with {record.params.get('batching', {}).get('strategy')} batches"
        )
    meta = {"library_name": "sentence-transformers", "pipeline_tag": "sentence-similarity", "tags": list(TAGS)}
    return f"---\n{yaml.safe_dump(meta, sort_keys=False)}---\n\n# {title}\n"


def _title(text: str) -> str | None:
    match = re.search(r"^# (.+)$", text, flags=re.MULTILINE)
    return match.group(1).strip() if match else None
