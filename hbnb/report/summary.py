"""The report's written outputs: verdicts, seed-group summaries, comparisons, seen/unseen splits, curves.

`write_summary(results, folder, claims)` writes, under `folder` (the report stage's):
- `verdicts.csv`: one row per claim, model, evaluation set and context;
- `summary.csv`: per group and headline figure, the mean over seeds, n, each seed's
  value, min, max and the seed x item interval, with ▲/† marks;
- `comparisons.csv`: every pair of strategies of a family, Holm within the family;
- `seen_unseen.csv`: the summary restricted to each seen/unseen split;
- `curves/<data set>_<figure>_<factor>.png` and `curves/<data set>_tradeoff_<factor>.png`;
- `summary.html`: the verdict table and the summary tables (shown first in index.html);
- `summary.md` (given the experiment folder): the question (the parameter file's header
  comment), the command, the stage time, the verdicts, the tables and the curves, in
  Markdown with relative image links: what `hbnb findings` commits.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hbnb.errors import DataFileError
from hbnb.evaluation.metrics import METRICS
from hbnb.evaluation.tasks import for_results
from hbnb.experiment.claims import Claim
from hbnb.files import write_atomic, write_text
from hbnb.report import curves, groups
from hbnb.report.results import Results

NOTE = (
    "mean over seeds [95% interval over seeds and items: two-level bootstrap, items shared by the seeds]; "
    "the seeds' values in parentheses; ▲ best strategy of the model; † differs from the best "
    "(paired on seed and item, Holm over the strategy pairs of the model, evaluation set and figure, α = 0.05); "
    "untuned baselines are shown unmarked."
)


@dataclass
class Summary:
    """What `write_summary` computed, for the notebook to show."""

    verdicts: pd.DataFrame
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    splits: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    curves: list[Path] = field(default_factory=list)


def write_summary(
    results: Results,
    folder: Path | str,
    claims: list[Claim] | None = None,
    *,
    n_resamples: int = 2000,
    experiment_dir: Path | str | None = None,
) -> Summary:
    """Compute and write every table and curve of the report (module docstring)."""
    folder = Path(folder)
    verdicts = groups.verdicts(results, claims or [], n_resamples=n_resamples)
    tests = {d: groups.compare_strategies(results, d, n_resamples=n_resamples) for d in results.datasets}
    summary = _concat(
        [groups.group_summary(results, d, n_resamples=n_resamples, tests=tests[d]) for d in results.datasets]
    )
    comparisons = _concat(list(tests.values()))
    splits = _concat(
        [
            groups.group_summary(results, d, split=s, n_resamples=n_resamples, marks=False)
            for d in results.datasets
            if for_results(d).heatmap_metric
            for s in groups.SPLITS
        ]
    )
    out = Summary(verdicts, summary, comparisons, splits)
    for name, frame in (
        ("verdicts", verdicts),
        ("summary", summary),
        ("comparisons", comparisons),
        ("seen_unseen", splits),
    ):
        write_atomic(folder / f"{name}.csv", lambda p, f=frame: _csv(f).to_csv(p, index=False))
    out.tables = {d: cells(summary[summary.dataset == d]) for d in results.datasets if len(summary)}
    out.curves = curves.write_curves(results, summary, folder / "curves")
    write_text(folder / "summary.html", summary_html(out))
    if experiment_dir is not None:
        write_text(folder / "summary.md", summary_markdown(out, Path(experiment_dir), folder))
    return out


def cells(summary: pd.DataFrame) -> pd.DataFrame:
    """The paper-style table of one data set: groups x figures, "mean [low, high] mark (seeds)", and n."""
    if summary.empty:
        return pd.DataFrame()
    digits = {row.figure: METRICS[_metric(row)].digits for row in summary.itertuples()}

    def text(row: pd.Series) -> str:
        d = digits[row.figure]
        out = f"{row['mean']:.{d}f} [{row.low:.{d}f}, {row.high:.{d}f}]"
        out += f" {row.mark}" if row.mark else ""
        if row.n_seeds > 1:
            out += " (" + " · ".join(f"{v:.{d}f}" for v in row.per_seed) + ")"
        return out

    shown = summary.assign(cell=summary.apply(text, axis=1))
    table = shown.pivot_table(index="group", columns="figure", values="cell", aggfunc="first", sort=False)
    n = shown.groupby("group", sort=False).n_seeds.max()
    table.insert(0, "n", n.reindex(table.index))
    return table[["n", *dict.fromkeys(summary.figure)]]


def _metric(row) -> str:
    return next(h.metric for h in for_results(row.dataset).headlines if h.key == row.key)


def verdict_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdict table as shown: claim, model, evaluation set, effect [interval], p, verdict."""
    if verdicts.empty:
        return pd.DataFrame(columns=["claim", "model", "dataset", "effect", "p", "n seeds", "verdict"])
    rows = []
    for r in verdicts.itertuples():
        context = {k: v for k, v in json.loads(r.context).items() if v is not None}
        measured = not pd.isna(getattr(r, "effect", float("nan")))
        effect = f"{r.effect:+.4f} [{r.low:+.4f}, {r.high:+.4f}]" if measured else ""
        rows.append(
            {
                "claim": r.claim,
                "model": r.model,
                "dataset": r.dataset,
                "setting": ", ".join(f"{k}={curves.short(v)}" for k, v in context.items()),
                "effect": effect + (f" vs {r.against}" if effect and r.against else ""),
                "p": f"{r.p:.4f}" if not pd.isna(getattr(r, "p", float("nan"))) else "",
                "n seeds": "" if pd.isna(getattr(r, "n_seeds", float("nan"))) else int(r.n_seeds),
                "verdict": r.verdict,
            }
        )
    table = pd.DataFrame(rows)
    return table if table.setting.astype(bool).any() else table.drop(columns="setting")


def summary_html(out: Summary) -> str:
    """The verdicts and the summary tables as an HTML fragment (every user string escaped)."""
    parts = []
    if len(out.verdicts):
        table = verdict_table(out.verdicts).to_html(classes="verdicts", border=0, index=False)
        parts.append("<h3>Claims</h3>" + table)
    for dataset, table in out.tables.items():
        parts.append(f"<h3>{html.escape(dataset)}</h3>" + table.to_html(classes="summary", border=0))
    return "\n".join(parts) + f"<p>{html.escape(NOTE)}</p>"


def summary_markdown(out: Summary, experiment_dir: Path, folder: Path) -> str:
    """The report as Markdown: question and design (the file's header comment), command, stage
    time, verdicts, one table per evaluation set, the curves (relative links), the note."""
    import yaml

    text = (experiment_dir / "params.yaml").read_text(encoding="utf-8")
    params = yaml.safe_load(text)
    comment = "\n".join(line[1:].strip() for line in text.splitlines() if line.startswith("#"))
    paragraphs = [" ".join(block.split("\n")) for block in comment.split("\n\n") if block.strip()]
    records = [json.loads(p.read_text()) for p in experiment_dir.rglob(".*.done.json")]
    timed = [r["seconds"] for r in records if "seconds" in r]
    lines = [f"# {_text(params['experiment'])}", "", _text(params.get("description", "")), ""]
    lines += [line for paragraph in paragraphs for line in (_text(paragraph), "")]
    lines += [
        "## How it was made",
        "",
        f"    hbnb run params/{params['experiment']}.yaml",
        "",
        f"{len(records)} stages before this report; stage time {sum(timed) / 60:.1f} minutes over the "
        f"{len(timed)} stages that recorded theirs (report written {pd.Timestamp.now():%Y-%m-%d %H:%M}).",
        "",
    ]
    if len(out.verdicts):
        lines += ["## Verdicts", "", _markdown(verdict_table(out.verdicts)), ""]
    for dataset, table in out.tables.items():
        lines += [f"## {dataset}", "", _markdown(table.reset_index()), ""]
    if out.curves:
        lines += ["## Curves", ""] + [f"![{p.stem}]({p.relative_to(folder).as_posix()})" for p in out.curves] + [""]
    lines += [NOTE, ""]
    return "\n".join(lines)


def export_findings(report_folder: Path | str, out: Path | str) -> list[Path]:
    """Copy what a finding commits from a report stage's folder: summary.md, the CSV tables and the
    curve images (no notebooks, no HTML bundles, no models)."""
    report_folder, out = Path(report_folder), Path(out)
    if not (report_folder / "summary.md").is_file():
        raise DataFileError(
            f"{report_folder / 'summary.md'}: not found; run the experiment (hbnb run) so its report stage writes it"
        )
    copied = []
    for path in [report_folder / "summary.md", *sorted(report_folder.glob("*.csv"))] + sorted(
        (report_folder / "curves").glob("*.png")
    ):
        target = out / path.relative_to(report_folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        copied.append(target)
    return copied


def findings_index(root: Path | str) -> Path:
    """`root/README.md`: the one-page answer of every finding under `root` (folders written by
    `export_findings`): a table of question, claim, verdicts and the clearest effect with its
    interval, then per finding every verdict, read from its verdicts.csv, linked to its
    summary.md. Nothing is typed by hand."""
    root = Path(root)
    lines = [
        "# What we found",
        "",
        "Each row is a verdict of a claim in one finding, produced by `hbnb run` on the finding's",
        "parameter file and copied here by `hbnb findings`; effects are differences of means over",
        "seeds with 95% intervals over seeds and items (see each summary for the design, the",
        "tables and the curves). Quick-look findings evaluate on a subset of items: their",
        "figures are not comparable with full-set ones.",
        "",
    ]
    answers, sections = [], []
    for folder in sorted(p.parent for p in root.glob("*/summary.md")):
        text = (folder / "summary.md").read_text(encoding="utf-8").splitlines()
        title = text[0].lstrip("# ").strip()
        description = text[2].strip() if len(text) > 2 else ""
        link = f"[{title}]({folder.name}/summary.md)"
        sections += [f"## {link}", "", description, ""]
        verdicts_csv = folder / "verdicts.csv"
        verdicts = pd.read_csv(verdicts_csv) if verdicts_csv.is_file() and verdicts_csv.stat().st_size else None
        question = _question(text[4] if len(text) > 4 else "") or description
        if verdicts is None or verdicts.empty:
            sections += ["No claims: read the tables and curves of the summary.", ""]
            answers.append(
                {"finding": link, "question": question, "claim": "", "verdicts": "no claims", "clearest": ""}
            )
            continue
        sections += [_markdown(verdict_table(verdicts)), ""]
        for claim, rows in verdicts.groupby("claim", sort=False):
            answers.append({"finding": link, "question": question, "claim": claim, **_answer(rows)})
    for k in range(len(answers) - 1, 0, -1):  # a finding's link and question once, then its claims
        if answers[k]["finding"] == answers[k - 1]["finding"]:
            answers[k]["finding"] = answers[k]["question"] = ""
    if answers:
        lines += ["## Answers", "", ANSWERS_NOTE, "", _markdown(pd.DataFrame(answers), raw=("finding",)), ""]
    path = root / "README.md"
    write_text(path, "\n".join(lines + sections))
    return path


ANSWERS_NOTE = (
    "One row per claim of a finding: how its verdicts fell over the models, evaluation sets and settings it "
    "was checked in, and the clearest effect (the one whose 95% interval lies farthest from zero), "
    "where it was measured."
)


def _question(paragraph: str) -> str:
    """The first sentence of a finding's header comment, without its 'Q1 on a CPU budget (...):' lead."""
    match = re.match(r"^(?:[^:]*:\s+)?(.+?[?.])(?:\s|$)", paragraph.strip())
    if not match:
        return ""
    sentence = match[1]
    return sentence[0].upper() + sentence[1:]


def _answer(rows: pd.DataFrame) -> dict[str, str]:
    """The verdict tally of one claim's rows and its clearest effect, as table cells."""
    counts = rows.verdict.value_counts()
    tally = ", ".join(f"{counts[v]} {v}" for v in ("supported", "refuted", "inconclusive") if v in counts)
    measured = rows.dropna(subset=["effect", "low", "high"])
    if measured.empty:
        return {"verdicts": f"{tally} (of {len(rows)})", "clearest": ""}
    distance = np.where(measured.low > 0, measured.low, np.where(measured.high < 0, -measured.high, 0.0))
    best = (
        measured.iloc[int(np.argmax(distance))] if distance.max() > 0 else measured.loc[measured.effect.abs().idxmax()]
    )
    where = {k: v for k, v in json.loads(best.context).items() if v is not None}
    place = ", ".join([str(best.dataset), *(f"{k.rsplit('.', 1)[-1]}={curves.short(v)}" for k, v in where.items())])
    return {
        "verdicts": f"{tally} (of {len(rows)})",
        "clearest": f"{best.effect:+.4f} [{best.low:+.4f}, {best.high:+.4f}] ({best.model}, {place})",
    }


def _markdown(frame: pd.DataFrame, raw: tuple[str, ...] = ()) -> str:
    """A Markdown table, every cell escaped except the `raw` columns (links hbnb wrote)."""
    cells = frame.astype(str).map(lambda v: _text(v).replace("|", "\\|"))
    for name in raw:
        cells[name] = frame[name].astype(str)
    rows = [[_text(c) for c in frame.columns], ["---"] * len(frame.columns), *cells.to_numpy().tolist()]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _text(value: object) -> str:
    """A user string in Markdown with `<` as an entity, so a name or description cannot open a tag wherever
    the Markdown is shown as HTML; the rest reads as typed ('hybrid > x-x', the header comment's words)."""
    return str(value).replace("<", "&lt;")


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _csv(frame: pd.DataFrame) -> pd.DataFrame:
    """Lists and mappings as JSON text, so the CSV reads back unambiguously."""
    return frame.map(lambda v: json.dumps(v) if isinstance(v, (list, dict, tuple)) else v)
