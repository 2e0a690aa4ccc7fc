"""Collect `hbnb evaluate` folders into zero_shot.csv (see README.md in this folder).

    python reports/baselines/make_table.py /tmp/base

reads BASE/<model>-<data set>/ for use-m and me5-small on xquad-r and mlqa-r.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

MODELS = ("use-m", "me5-small")
DATASETS = ("xquad-r", "mlqa-r")
FIGURES = (  # (setting, metric, column)
    ("mono", "map", "mono_map"),
    ("cross", "map", "cross_map"),
    ("pool", "map", "multilingual_map"),
    ("pool", "rank_distance", "rank_distance"),
    ("pool", "recall@1", "multilingual_recall@1"),
    ("pool", "recall@10", "multilingual_recall@10"),
)


def row(folder: Path, model: str, dataset: str) -> dict[str, object]:
    """The headline figures of one evaluation folder, with their 95% intervals."""
    table = pd.read_parquet(folder / "metrics.parquet")
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    out: dict[str, object] = {
        "model": model,
        "dataset": dataset,
        "candidates": meta["candidates"],
        "n_queries": meta["n_queries"],
        "pool_size": meta["pool_size"],
    }
    for setting, metric, name in FIGURES:
        hit = table[(table.setting == setting) & (table.query_lang == "all") & (table.metric == metric)]
        if len(hit) != 1:
            raise SystemExit(
                f"{folder}/metrics.parquet: expected one overall {setting} {metric} row, found {len(hit)}"
            )
        value = hit.iloc[0]
        out[name] = round(float(value.value), 4)
        out[f"{name}_ci_low"] = round(float(value.ci_low), 4)
        out[f"{name}_ci_high"] = round(float(value.ci_high), 4)
    return out


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    base = Path(sys.argv[1])
    missing = [
        f"{base}/{m}-{d}" for m in MODELS for d in DATASETS if not (base / f"{m}-{d}" / "metrics.parquet").is_file()
    ]
    if missing:
        raise SystemExit(
            f"no evaluation in {', '.join(missing)}; run `hbnb evaluate --model M --data D --out FOLDER` first"
        )
    df = pd.DataFrame([row(base / f"{m}-{d}", m, d) for m in MODELS for d in DATASETS])
    target = Path(__file__).with_name("zero_shot.csv")
    df.to_csv(target, index=False)
    print(
        df[["model", "dataset", "mono_map", "cross_map", "multilingual_map", "rank_distance"]].to_string(index=False)
    )
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
