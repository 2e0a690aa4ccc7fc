"""MTEB's result format, both ways: hbnb's scores as MTEB result files, MTEB's results as hbnb's tidy rows.

Every saved evaluation also writes, under `<its folder>/mteb/`, what an `mteb.ResultCache`
holds: `results/<model>/<revision>/<task>.json` (a `TaskResult`) and `model_meta.json` (a
`ModelMeta`). The model is the run's name, its revision the model fingerprint (a hash of its
weights, modules, prompts and length), so `mteb.ResultCache(folder / "mteb").load_results()`
reads them back (`load`). The files are plain JSON written without importing mteb (about a
second), so scoring is no slower; an evaluation that mteb itself ran (`hbnb.evaluation.mteb_run`)
writes mteb's own `TaskResult` as it is.

One MTEB subset per language pair, "X-Y" (queries in X, candidates in Y; bitext: X's lines
searched among Y's), with its languages as ISO 639-3 + script codes ("deu-Latn"). Metric keys:
ndcg@10 -> ndcg_at_10, recall@k -> recall_at_k, mrr@10 -> mrr_at_10, accuracy@1 -> accuracy, and
hbnb's map -> "map": average precision over the whole ranking (LAReQA's mAP). MTEB reports
map_at_1000, the same AP cut at rank 1000: equal wherever every relevant candidate ranks in the
top 1000 (any pair pool of at most 1000 candidates); reading MTEB results, map_at_1000 becomes
hbnb's "map". The main score is nDCG@10 (retrieval) or accuracy (bitext). The multilingual
pool, rank distance and the top-10 shares stay in hbnb's own tables: they are not MTEB scores.

`table_from_result` turns a `TaskResult` (of any MTEB task) into rows of hbnb's metrics table:
one "pair" row per subset and metric, "mono"/"cross" macro-averages over the subsets whose
query and candidate languages are equal/differ, and setting "mteb": each metric's mean over
all subsets (how MTEB averages a task). A `TaskResult` holds no per-query values, so these rows
carry no interval (an mteb run's per-query values are kept apart: `hbnb.evaluation.mteb_run`).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from hbnb.errors import UnknownNameError
from hbnb.evaluation.tables import tidy_row
from hbnb.evaluation.tasks import TASKS
from hbnb.files import read_json, write_atomic, write_text
from hbnb.languages import canonical

FOLDER = "mteb"  # under an evaluation's folder
SPLIT = "test"  # the split hbnb's own sets are in MTEB's terms
# hbnb metric -> MTEB score key, as hbnb writes its results
MTEB_KEYS = {
    "ndcg@10": "ndcg_at_10",
    "map": "map",
    "recall@1": "recall_at_1",
    "recall@10": "recall_at_10",
    "recall@100": "recall_at_100",
    "mrr@10": "mrr_at_10",
    "accuracy@1": "accuracy",
}
# MTEB score key -> hbnb metric, reading MTEB results (hbnb's own "map" before MTEB's map_at_1000)
HBNB_METRICS = {**{key: metric for metric, key in MTEB_KEYS.items()}, "map_at_1000": "map"}
MAIN_SCORES = ("ndcg_at_10", "accuracy")  # the first a subset has is its main score


def subset(query_lang: str, cand_lang: str) -> str:
    """The MTEB subset of a language pair: "de-en"."""
    return f"{query_lang}-{cand_lang}"


@functools.cache
def _mteb_table(name: str) -> dict[str, str]:
    """One of mteb's language tables (ISO 639-1 -> 639-3, 639-3 -> default script), read without importing mteb."""
    spec = importlib.util.find_spec("mteb")
    if spec is None or not spec.submodule_search_locations:
        return {}
    return read_json(Path(next(iter(spec.submodule_search_locations))) / "languages" / name)


def mteb_language(code: str) -> str | None:
    """An hbnb language code as MTEB writes it, "de" -> "deu-Latn"; None where mteb's tables lack it."""
    iso3 = _mteb_table("iso_639_1_to_3.json").get(code, code) if len(code) == 2 else code
    script = _mteb_table("iso_639_3_to_default_script.json").get(iso3)
    return f"{iso3}-{script}" if script else None


def hbnb_language(code: str) -> str:
    """An MTEB language code as hbnb writes it, "deu-Latn" -> "de"; unchanged where hbnb does not know it, or
    where the script is not the language's default one ("zho-Hant" stays, so it is not confused with "zho-Hans")."""
    iso3, _, script = code.partition("-")
    if script and _mteb_table("iso_639_3_to_default_script.json").get(iso3) != script:
        return code
    iso1 = {three: one for one, three in _mteb_table("iso_639_1_to_3.json").items()}
    for candidate in (iso3, iso1.get(iso3)):
        if candidate:
            try:
                return canonical(candidate)
            except UnknownNameError:
                continue
    return code


def dataset_revision(max_items: int | None = None) -> str:
    """The data revision of hbnb's own sets: a digest of the checksum list every data file is verified
    against (hbnb/data/SHA256SUMS), and the item count of a `max_items` subset."""
    from importlib import resources

    text = resources.files("hbnb.data").joinpath("SHA256SUMS").read_bytes()
    digest = hashlib.blake2b(text, digest_size=6).hexdigest()
    return f"hbnb-{digest}" + (f"-items{max_items}" if max_items else "")


def model_card(model: Any) -> dict[str, Any]:
    """What MTEB's model metadata records about a `SentenceTransformer`, read cheaply (no mteb import)."""
    from hbnb.models import parameter_counts

    counts = parameter_counts(model)
    similarity = getattr(model, "similarity_fn_name", None)
    return {
        "embed_dim": model.get_embedding_dimension(),
        "max_tokens": model.max_seq_length,
        "similarity_fn_name": str(similarity) if similarity else None,
        "n_parameters": counts["total"],
        "n_embedding_parameters": counts["total"] - counts["non_embedding"],
    }


def model_meta(evaluation: Any) -> dict[str, Any]:
    """`model_meta.json`: the run as MTEB's `ModelMeta` (name: the run, revision: the model fingerprint)."""
    meta = evaluation.meta
    card = meta.get("model_card", {})
    return {
        "name": evaluation.run,
        "revision": meta.get("model_fingerprint") or "no_revision_available",
        "release_date": None,
        "languages": None,
        "n_parameters": card.get("n_parameters"),
        "n_embedding_parameters": card.get("n_embedding_parameters"),
        "memory_usage_mb": None,
        "max_tokens": card.get("max_tokens"),
        "embed_dim": card.get("embed_dim"),
        "license": None,
        "open_weights": None,
        "public_training_code": None,
        "public_training_data": None,
        "framework": ["Sentence Transformers", "PyTorch"],
        "reference": None,
        "similarity_fn_name": card.get("similarity_fn_name"),
        "use_instructions": None,
        "training_datasets": None,
        "adapted_from": meta.get("model") if meta.get("model") not in (None, evaluation.run) else None,
        "modalities": ["text"],
        "model_type": ["dense"],
        "experiment_kwargs": None,
        "loader": "SentenceTransformerEncoderWrapper",
    }


def task_result(evaluation: Any) -> dict[str, Any] | None:
    """hbnb's per-pair scores as MTEB's `TaskResult` JSON (one subset per pair); None for a table without pairs."""
    task = evaluation.task
    setting = task.pair_setting if task is not None else "pair"
    rows = evaluation.table[(evaluation.table.setting == setting) & evaluation.table.metric.isin(list(MTEB_KEYS))]
    if rows.empty:
        return None
    scores = []
    for (x, y), part in rows.groupby(["query_lang", "cand_lang"], sort=False):
        values = {MTEB_KEYS[m]: float(v) for m, v in zip(part.metric, part.value)}
        main = next((values[k] for k in MAIN_SCORES if k in values), float(part.value.iloc[0]))
        languages = [code for code in (mteb_language(x), mteb_language(y)) if code]
        scores.append({**values, "main_score": main, "hf_subset": subset(x, y), "languages": languages})
    try:
        version = importlib.metadata.version("mteb")
    except importlib.metadata.PackageNotFoundError:
        version = None
    for entry in scores:
        entry["mteb_version"] = version
    registered = task is not None and _registered(task)
    return {
        "dataset_revision": dataset_revision(evaluation.meta.get("max_items")) if registered else "local",
        "task_name": evaluation.dataset,
        "mteb_version": version,
        "scores": {SPLIT: scores},
        "evaluation_time": evaluation.meta.get("wall_time_s"),
        "kg_co2_emissions": None,
        "date": datetime.datetime.now(tz=datetime.UTC).timestamp(),
        "evaluation_phases": None,
    }


def _registered(task: Any) -> bool:
    return TASKS.get(task.name) is task


def write(evaluation: Any, folder: Path | str) -> Path | None:
    """Write the evaluation's MTEB result and model metadata under `folder` (an `mteb.ResultCache` layout);
    returns the result file, or None when the evaluation has no MTEB scores (no per-pair rows)."""
    meta = model_meta(evaluation)
    result = getattr(evaluation, "mteb_result", None)
    data = task_result(evaluation) if result is None else None
    if result is None and data is None:
        return None
    name = result.task_name if result is not None else data["task_name"]
    revision_dir = Path(folder) / "results" / meta["name"].replace("/", "__").replace(" ", "_") / meta["revision"]
    revision_dir.mkdir(parents=True, exist_ok=True)
    path = revision_dir / f"{name}.json"
    if result is not None:
        write_atomic(path, lambda p: result.to_disk(Path(p)))  # mteb's own writer
    else:
        write_text(path, json.dumps(data, indent=2))
    write_text(revision_dir / "model_meta.json", json.dumps(meta, indent=4, default=str))
    return path


def load(folder: Path | str) -> Any:
    """The MTEB results under an evaluation folder (its `mteb/`, or that folder itself), read by mteb:
    an `mteb.BenchmarkResults`."""
    import mteb

    folder = Path(folder)
    cache = folder / FOLDER if (folder / FOLDER / "results").is_dir() else folder
    return mteb.ResultCache(cache).load_results(include_remote=False)


def table_from_result(
    result: Any, run: str, dataset: str, n_queries: Mapping[str, int] | None = None, split: str | None = None
) -> pd.DataFrame:
    """hbnb's tidy metrics rows from an MTEB `TaskResult` (or its JSON dict): see the module docstring.

    `n_queries`: the queries scored per subset (MTEB does not record them; 0 where unknown).
    `split`: which of the result's splits (default: "test" if present, else the first).
    """
    data = result if isinstance(result, Mapping) else result.to_dict()
    splits = data["scores"]
    split = split or (SPLIT if SPLIT in splits else next(iter(splits)))
    entries = splits[split]
    keys = subset_languages(entries)
    counts = dict(n_queries or {})
    rows: list[dict[str, Any]] = []
    pair_values: dict[str, list[tuple[str, str, float, int]]] = {}
    for entry in entries:
        x, y = keys[entry["hf_subset"]]
        n = counts.get(entry["hf_subset"], 0)
        values: dict[str, float] = {}
        for key, metric in HBNB_METRICS.items():
            if metric not in values and isinstance(entry.get(key), int | float):
                values[metric] = float(entry[key])
        if "recall@1" in values:  # a retrieval result: mteb's "accuracy" repeats recall@1
            values.pop("accuracy@1", None)
        for metric, value in values.items():
            rows.append(tidy_row(run, dataset, "pair", x, y, metric, value, n))
            pair_values.setdefault(metric, []).append((x, y, value, n))
    for metric, values in pair_values.items():
        for setting, same in (("mono", True), ("cross", False)):
            chosen = [v for v in values if (v[0] == v[1]) == same]
            if not chosen:
                continue
            other = "same" if same else "others"
            rows.append(tidy_row(run, dataset, setting, "all", other, metric, _mean(chosen), _total(chosen)))
            for x in dict.fromkeys(v[0] for v in chosen):
                mine = [v for v in chosen if v[0] == x]
                rows.append(tidy_row(run, dataset, setting, x, other, metric, _mean(mine), _total(mine)))
        rows.append(tidy_row(run, dataset, "mteb", "all", "all", metric, _mean(values), _total(values)))
    return pd.DataFrame(rows)


def _mean(values: list[tuple[str, str, float, int]]) -> float:
    return sum(v[2] for v in values) / len(values)


def _total(values: list[tuple[str, str, float, int]]) -> int:
    return sum(v[3] for v in values)


def subset_languages(entries: list[Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """Each subset's (query language, candidate language) in hbnb's codes: from its one or two languages;
    the subset's own name where it has more, or where two subsets would get the same pair."""
    out = {}
    for entry in entries:
        langs = [hbnb_language(code) for code in entry.get("languages") or []]
        name = entry["hf_subset"]
        out[name] = (langs[0], langs[-1]) if 1 <= len(langs) <= 2 else (name, name)
    if len(set(out.values())) < len(out):
        return {name: (name, name) for name in out}
    return out
