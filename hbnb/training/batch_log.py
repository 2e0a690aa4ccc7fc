"""What each training batch really held: the collator's records, their per-step log, the realised mix.

`RecordingCollator` records every batch it builds; `BatchLog` writes each optimizer
step's records to `batches.rank<N>.jsonl`; `merge_batch_logs` joins the processes'
logs into `batches.jsonl`, and `realised_mix` summarises it (`batch_mix.json`).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator
from transformers import TrainerCallback

from hbnb.files import read_jsonl, write_text
from hbnb.training.augment import AUGMENT_COLUMN
from hbnb.training.distributed import process_rank
from hbnb.training.pairs import CODE_COLUMN, PairIndex


@dataclass
class RecordingCollator(SentenceTransformerDataCollator):
    """The sentence-transformers collator, recording what each batch really held.

    It strips the pair codes from the features and appends one record per batch
    (kind, language, pair counts) to `records`, the realised batch mix.
    """

    index: PairIndex | None = None
    records: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        codes = [f.pop(CODE_COLUMN) for f in features if CODE_COLUMN in f]
        augmented = [json.loads(f.pop(AUGMENT_COLUMN)) for f in features if AUGMENT_COLUMN in f]
        if codes and self.index is not None:
            record = self.index.describe(codes)
            if self.index.switching is not None:
                words: Counter[str] = Counter()
                for a in augmented:
                    words.update(a["words"])
                record["switched"] = sum(a["switched"] for a in augmented)
                record["eligible_words"] = sum(a.get("eligible", 0) for a in augmented)
                record["words_replaced"] = dict(sorted(words.items()))
            self.records.append(record)
        batch = super().__call__(features)
        if codes and self.index is not None:
            masks = [v for k, v in batch.items() if k.endswith("attention_mask")]
            if masks:  # tokens the encoder saw (query and passage; padding not counted): throughput in tokens/s
                record["tokens"] = int(sum(int(m.sum()) for m in masks))
        return batch


def realised_mix(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Summary of a batch log: share of monolingual batches, per-language and per-pair counts."""
    kinds = Counter(r["kind"] for r in records)
    langs = Counter(r["lang"] for r in records if r["kind"] == "mono")
    pairs: Counter[str] = Counter()
    for r in records:
        pairs.update(r["pairs"])
    return {
        "batches": len(records),
        "mono_share": kinds["mono"] / len(records) if records else 0.0,
        "kinds": dict(kinds),
        "mono_batches_per_language": dict(sorted(langs.items())),
        "examples_per_pair": dict(sorted(pairs.items())),
    }


def augmentation_mix(records: list[dict[str, Any]], index: PairIndex) -> dict[str, Any]:
    """What code-switching and bitext really added (augmentation.json, beside batch_mix.json):
    examples switched, eligible and replaced words per target language, bitext batches and pairs."""
    out: dict[str, Any] = {"examples": sum(r["size"] for r in records)}
    if index.switching is not None:
        words: Counter[str] = Counter()
        for r in records:
            words.update(r.get("words_replaced", {}))
        qa = sum(r["size"] - r.get("bitext", 0) for r in records)
        switched = sum(r.get("switched", 0) for r in records)
        eligible = sum(r.get("eligible_words", 0) for r in records)
        out["code_switching"] = {
            **index.switching.describe(),
            "qa_examples": qa,
            "examples_switched": switched,
            "realised_share": round(switched / qa, 4) if qa else None,
            "eligible_words": eligible,
            "words_replaced": sum(words.values()),
            "realised_rate": round(sum(words.values()) / eligible, 4) if eligible else None,
            "words_replaced_per_language": dict(sorted(words.items())),
        }
    if index.bitext is not None:
        pairs: Counter[str] = Counter()
        for r in records:
            pairs.update(r.get("bitext_pairs", {}))
        batches = sum(r["kind"] == "bitext" for r in records)
        out["bitext"] = {
            "sources": list(index.bitext.sources),
            "share": index.bitext.share,
            "pool_pairs": len(index.bitext),
            "pool_per_language_pair": index.bitext.pairs(),
            "batches": batches,
            "realised_batch_share": round(batches / len(records), 4) if records else None,
            "examples": sum(pairs.values()),
            "examples_per_direction": dict(sorted(pairs.items())),
            "batches_with_a_repeated_sentence": sum(
                r.get("bitext", 0) != r.get("bitext_sentences", 0) for r in records
            ),
        }
    return out


def merge_batch_logs(out: Path) -> list[dict[str, Any]]:
    """All processes' batch records, in (step, rank) order, written to batches.jsonl."""
    records = []
    for path in sorted(out.glob("batches.rank*.jsonl")):
        records += read_jsonl(path)
    records.sort(key=lambda r: (r["step"], r["rank"], r["micro"]))
    write_text(out / "batches.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    return records


class BatchLog(TrainerCallback):
    """Writes the batch records of each optimizer step to this process's log file.

    The collator records every batch it builds, in order; the trainer's data loader
    may fetch one batch ahead, so each step takes the oldest records, one per
    gradient-accumulation micro-batch, and leaves the rest for the next step.
    """

    def __init__(self, out: Path, collator: RecordingCollator, per_step: int) -> None:
        self.path = out / f"batches.rank{process_rank()}.jsonl"
        self.collator = collator
        self.per_step = per_step

    def truncate(self, step: int) -> None:
        """Keep only steps up to `step` (a resume repeats the steps after its checkpoint)."""
        if not self.path.is_file():
            return
        kept = [record for record in read_jsonl(self.path) if record["step"] <= step]
        write_text(self.path, "".join(json.dumps(record) + "\n" for record in kept))

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102 - trainer hook
        now = round(time.time(), 3)  # when the step ended: steady-state throughput from the log
        taken = self.collator.records[: self.per_step]
        del self.collator.records[: self.per_step]
        with open(self.path, "a", encoding="utf-8") as fh:
            for micro, record in enumerate(taken):
                fh.write(
                    json.dumps(
                        {"step": state.global_step, "rank": process_rank(), "micro": micro, "time": now, **record}
                    )
                    + "\n"
                )
