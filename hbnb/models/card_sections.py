"""The markdown of hbnb's part of a model card (`hbnb.models.card`): design, batch mix, hyper-parameters, results.

Every figure comes from the run's records as written (`params.yaml`, `run.json`,
`batch_mix.json`, `augmentation.json`) and from `eval/<set>/metrics.parquet` through
`hbnb.evaluation.tables.headline_figures`, so the card shows what the reports show.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

if TYPE_CHECKING:
    from hbnb.models.card import EvalRecord, TrainingRecord

START = "<!-- hbnb:start: written by hbnb from the run's records; `hbnb push` rewrites this section -->"
END = "<!-- hbnb:end -->"

# training sets hbnb ships, by name: their name in the card and their hub dataset id
TRAINING_SETS = {"xquad": ("XQuAD", "google/xquad"), "mlqa": ("MLQA", "facebook/mlqa")}

BATCH_KINDS = {
    "mono": "X-X (monolingual: one language per batch)",
    "cross": "X-Y (cross-lingual: question and passage in two languages)",
    "mixed": "mixed (languages uncontrolled)",
    "bitext": "bitext (translation pairs)",
}
STRATEGIES = {
    "x-x": "every batch monolingual (X-X): one language per batch, question and passage in it",
    "x-y": "every batch cross-lingual (X-Y): each question and its passage in two different languages",
    "hybrid": "per batch, monolingual (X-X) with probability alpha = {alpha}, else cross-lingual (X-Y)",
    "en-en": "English only (the classic baseline)",
    "random": "sentence-transformers' NoDuplicatesBatchSampler over every valid pair: no control of batch languages",
}


def training_set(data: Any) -> tuple[str, str | None]:
    """The training data's name in the card and its hub dataset id (None when it has none)."""
    if isinstance(data, str):
        return TRAINING_SETS.get(data, (Path(data).name or data, None))
    sources = (data or {}).get("sources", {}) if isinstance(data, dict) else getattr(data, "sources", {})
    names = sorted(set(sources.values()))
    return f"aligned data ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})", None


@dataclass(frozen=True)
class Figure:
    """One headline figure of an evaluation: its key, label, value, 95% interval and digits."""

    key: str
    label: str
    value: float
    low: float
    high: float
    digits: int


def headline_rows(ev: EvalRecord) -> list[Figure]:
    """The headline figures of one evaluation set (`hbnb.evaluation.tables.headline_figures`)."""
    from hbnb.evaluation.tables import headline_figures
    from hbnb.evaluation.tasks import for_results

    headlines = for_results(ev.dataset).headlines
    figures = headline_figures(ev.table, headlines)
    out = []
    for h in headlines:
        rows = figures[figures.figure == h.label]
        if rows.empty:
            continue
        row = rows.iloc[0]
        out.append(Figure(h.key, h.label, float(row.value), float(row.ci_low), float(row.ci_high), h.digits))
    return out


def section(record: TrainingRecord | None, evaluations: Sequence[EvalRecord]) -> str:
    """hbnb's part of the card (markdown between the markers)."""
    lines = [START, "", "## Training and evaluation with hbnb", ""]
    if record is not None:
        lines += _design(record) + _batches(record) + _hyperparameters(record)
    lines += _evaluation(evaluations)
    return "\n".join([*lines, END])


def _design(record: TrainingRecord) -> list[str]:
    p, run = record.params, record.run
    name, dataset_id = training_set(p.get("data"))
    data = f"[{name}](https://huggingface.co/datasets/{dataset_id})" if dataset_id else name
    languages, pairs = run.get("languages", []), run.get("pairs", [])
    rows = [
        ("training data", f"{data} (`{p.get('data')}`)" if isinstance(p.get("data"), str) else data),
        (f"languages ({len(languages)})", ", ".join(languages)),
        (f"cross-lingual pairs ({len(pairs)})", ", ".join(pairs) or "none (monolingual batches only)"),
        ("training items", f"{run.get('train_items', 0):,} active items"),
        (
            "trained",
            f"{run.get('completed_steps', 0):,} steps, {run.get('trained_pairs', 0):,} pairs, "
            f"{run.get('epochs', 0)} epochs ({run.get('processes', 1)} process"
            f"{'es' if run.get('processes', 1) != 1 else ''}, {run.get('precision', '?')})",
        ),
    ]
    validation = p.get("validation")
    if validation:
        best = run.get("best_validation_loss")
        rows.append(
            (
                "validation",
                f"{_held_out(validation.get('items'))} held out, X-X in {', '.join(validation.get('languages', []))}, "
                f"loss every {validation.get('every')} steps"
                + (f"; best {best:.4f}, kept" if best is not None and validation.get("keep_best") else ""),
            )
        )
    return ["### Training data and design", "", *_table(("", ""), rows), ""]


def _batches(record: TrainingRecord) -> list[str]:
    batching = record.params.get("batching", {})
    strategy = batching.get("strategy", "?")
    how = STRATEGIES.get(strategy, strategy).format(alpha=batching.get("alpha"))
    mix = record.mix
    total = mix.get("batches", 0)
    lines = [
        "### Batch strategy and batch mix",
        "",
        f"Strategy **{strategy}**: {how}. The batches drawn (`batch_mix.json`; process 0's):",
        "",
    ]
    kinds = mix.get("kinds", {})
    rows = [(BATCH_KINDS.get(k, k), f"{n:,}", _share(n, total)) for k, n in kinds.items()]
    lines += [*_table(("batch kind", "batches", "share"), [*rows, ("all", f"{total:,}", _share(total, total))]), ""]
    per_language = mix.get("mono_batches_per_language", {})
    if per_language:
        lines += [
            "X-X batches per language: " + ", ".join(f"{k} {v:,}" for k, v in per_language.items()) + ".",
            "",
        ]
    pairs = mix.get("examples_per_pair", {})
    if pairs:
        count = sum(pairs.values())
        rows = [(pair, f"{n:,}", _share(n, count)) for pair, n in pairs.items()]
        lines += ["Training examples per language pair (question-passage):", ""]
        lines += [*_table(("pair", "examples", "share"), rows), ""]
    for key, title in (("code_switching", "Code-switching"), ("bitext", "Bitext")):
        if record.augmentation.get(key):
            lines += [f"{title} (`augmentation.json`):", "", "```json"]
            lines += [json.dumps(record.augmentation[key], indent=2, ensure_ascii=False), "```", ""]
    return lines


def _hyperparameters(record: TrainingRecord) -> list[str]:
    p, run = record.params, record.run
    batching = p.get("batching", {})
    loss = "CachedMultipleNegativesRankingLoss" if p.get("loss") == "cached-mnrl" else "MultipleNegativesRankingLoss"
    mini = f", mini-batches of {p.get('mini_batch_size')}" if p.get("loss") == "cached-mnrl" else ""
    rows = [
        ("base model", f"`{p.get('model')}`"),
        ("loss", f"{loss} (scale {p.get('scale')}{mini})"),
        (
            "batch size",
            f"{batching.get('batch_size')} pairs x {p.get('gradient_accumulation_steps', 1)} accumulation "
            f"x {run.get('processes', 1)} process(es)",
        ),
        ("steps", f"{run.get('max_steps')} (budget: {p.get('budget')})"),
        ("learning rate", p.get("learning_rate")),
        ("weight decay", p.get("weight_decay")),
        ("warmup ratio", p.get("warmup_ratio")),
        ("precision", run.get("precision")),
        ("max sequence length", p.get("max_seq_length") or "the model's"),
        ("word embeddings frozen", "yes" if p.get("freeze_word_embeddings") else "no"),
        ("seeds", f"training {p.get('seed')}, batches {batching.get('seed')}, design {batching.get('design_seed')}"),
    ]
    resolved = {k: v for k, v in p.items() if k != "output_dir"}
    return [
        "### Hyper-parameters",
        "",
        *_table(("parameter", "value"), rows),
        "",
        "<details><summary>The resolved parameters (hbnb's params.yaml)</summary>",
        "",
        "```yaml",
        yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True).rstrip(),
        "```",
        "",
        "</details>",
        "",
    ]


def _evaluation(evaluations: Sequence[EvalRecord]) -> list[str]:
    lines = ["### Evaluation", ""]
    if not evaluations:
        return [*lines, "No evaluation yet: `hbnb push` adds the evaluations the run has by then.", ""]
    lines += ["Headline figures with 95% intervals (bootstrap over items), from `eval/<set>/metrics.parquet`.", ""]
    for ev in evaluations:
        langs = languages_of(ev.table)
        notes = [f"languages: {', '.join(langs)}"] if langs else []
        if ev.meta.get("n_queries"):
            notes.append(f"{ev.meta['n_queries']:,} queries")
        if ev.meta.get("pool_size"):
            notes.append(f"a pool of {ev.meta['pool_size']:,} candidates")
        if ev.meta.get("candidates"):
            notes.append(f"candidates: {ev.meta['candidates']}")
        if ev.meta.get("max_items"):
            notes.append(f"**{ev.meta['max_items']} items only: not comparable with the full set**")
        rows = [
            (
                f.label,
                f"{f.value:.{f.digits}f}",
                "-" if pd.isna(f.low) else f"[{f.low:.{f.digits}f}, {f.high:.{f.digits}f}]",
            )
            for f in headline_rows(ev)
        ]
        lines += [f"#### {dataset_title(ev.dataset)} (`{ev.dataset}`)", "", "; ".join(notes) + ".", ""]
        lines += [*_table(("figure", "value", "95% interval"), rows), ""]
    return lines


def dataset_title(name: str) -> str:
    from hbnb.evaluation.tasks import TASKS

    task = TASKS.get(name)
    return task.description.split(":")[0].split(" (")[0] if task else name


def languages_of(table: pd.DataFrame) -> list[str]:
    langs = table.loc[~table.query_lang.isin(["all"]), "query_lang"]
    return sorted({str(x) for x in langs})


def _held_out(items: float | None) -> str:
    if items is None:
        return "items"
    return f"{items:.0%} of the items" if items < 1 else f"{int(items):,} items"


def _share(n: int, total: int) -> str:
    return f"{n / total:.1%}" if total else "-"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
