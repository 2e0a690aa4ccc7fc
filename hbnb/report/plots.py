"""The figures of the reports and the explorer (matplotlib + seaborn); each returns a Figure."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from hbnb.languages import name as language_name


def show(fig) -> None:
    """Display a figure where the notebook is now (not at the end of the cell), then free it."""
    from IPython.display import display

    display(fig)
    plt.close(fig)


def _size(matrix: pd.DataFrame) -> tuple[float, float]:
    return (1.2 + 0.62 * matrix.shape[1], 1.0 + 0.5 * matrix.shape[0])


def heatmap(matrix: pd.DataFrame, title: str, *, fmt: str = ".2f", vmin: float | None = 0.0, vmax: float | None = 1.0):
    """Per-language-pair values: rows are query languages, columns candidate languages."""
    fig, ax = plt.subplots(figsize=_size(matrix))
    sns.heatmap(
        matrix,
        annot=True,
        fmt=fmt,
        cmap="viridis",
        vmin=vmin,
        vmax=vmax,
        ax=ax,
        cbar_kws={"shrink": 0.8},
        annot_kws={"fontsize": 8},
    )
    ax.set_xlabel("candidate language")
    ax.set_ylabel("query language")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def delta_heatmap(delta: pd.DataFrame, significant: pd.DataFrame, title: str, *, fmt: str = "+.2f"):
    """Differences per language pair; cells whose difference is not significant are greyed and marked n.s."""
    fig, ax = plt.subplots(figsize=_size(delta))
    limit = float(np.nanmax(np.abs(delta.to_numpy()))) or 1.0
    labels = delta.map(lambda v: "" if pd.isna(v) else format(v, fmt))
    labels = labels.where(significant, labels + "\nn.s.")
    sns.heatmap(
        delta,
        annot=labels,
        fmt="",
        cmap="RdBu",
        center=0,
        vmin=-limit,
        vmax=limit,
        ax=ax,
        cbar_kws={"shrink": 0.8},
        annot_kws={"fontsize": 7},
    )
    grey = np.where(significant.to_numpy() | delta.isna().to_numpy(), np.nan, 1.0)
    ax.pcolormesh(
        np.arange(delta.shape[1] + 1),
        np.arange(delta.shape[0] + 1),
        grey,
        cmap="Greys",
        alpha=0.35,
        vmin=0,
        vmax=1.5,
        shading="flat",
    )
    ax.set_xlabel("candidate language")
    ax.set_ylabel("query language")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def loss_curve(loss_csv: Path | str):
    """Training loss per step (and the validation loss where it was computed)."""
    rows = list(csv.DictReader(open(loss_csv, encoding="utf-8")))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    steps = [int(r["step"]) for r in rows if r["loss"]]
    loss = pd.Series([float(r["loss"]) for r in rows if r["loss"]], index=steps)
    ax.plot(loss.index, loss.to_numpy(), color="#bbb", lw=0.8, label="training loss (per step)")
    ax.plot(
        loss.index, loss.rolling(20, min_periods=1).mean().to_numpy(), color="#333", label="training loss (mean of 20)"
    )
    evals = [(int(r["step"]), float(r["eval_loss"])) for r in rows if r["eval_loss"]]
    if evals:
        ax.plot(*zip(*evals), "o-", color="#c33", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def batch_mix(mix_json: Path | str):
    """The realised batch mix: kinds of batches and monolingual batches per language."""
    mix = json.loads(Path(mix_json).read_text(encoding="utf-8"))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3), gridspec_kw={"width_ratios": [1, 3]})
    kinds = pd.Series(mix["kinds"])
    axes[0].bar(kinds.index, kinds.to_numpy(), color=["#4c72b0", "#dd8452"][: len(kinds)])
    axes[0].set_title(f"batches ({mix['mono_share']:.0%} monolingual)")
    langs = pd.Series(mix["mono_batches_per_language"], dtype=float)
    if len(langs):
        axes[1].bar(langs.index, langs.to_numpy(), color="#4c72b0")
    axes[1].set_title("monolingual batches per language")
    fig.tight_layout()
    return fig


def rank_distance(bias: pd.DataFrame, title: str = "rank distance per query language (lower: less bias)"):
    """Grouped bars: query languages x runs."""
    long = bias.reset_index().melt(id_vars="query_lang", var_name="run", value_name="rank distance")
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(bias)), 3.4))
    sns.barplot(long, x="query_lang", y="rank distance", hue="run", ax=ax)
    ax.set_xlabel("query language")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def language_share(share: pd.DataFrame, title: str):
    """Stacked bars: for each query language, which candidate languages fill the top 10."""
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(share)), 3.4))
    bottom = np.zeros(len(share))
    palette = sns.color_palette("tab20", n_colors=share.shape[1])
    for color, lang in zip(palette, share.columns):
        values = share[lang].fillna(0).to_numpy()
        ax.bar(share.index, values, bottom=bottom, color=color, label=f"{lang} ({language_name(lang)})")
        bottom += values
    ax.set_ylim(0, 1)
    ax.set_xlabel("query language")
    ax.set_ylabel("share of the top 10")
    ax.set_title(title)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig


def small_multiples(matrices: dict[str, pd.DataFrame], title: str, *, vmin: float = 0.0, vmax: float = 1.0):
    """Per-language-pair matrices of several runs side by side, on one shared colour scale."""
    n = len(matrices)
    cols = min(n, 3)
    rows = -(-n // cols)
    first = next(iter(matrices.values()))
    w, h = _size(first)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * (w - 0.6) + 0.8, rows * h), squeeze=False)
    for ax, (name, matrix) in zip(axes.flat, matrices.items()):
        sns.heatmap(
            matrix, annot=True, fmt=".2f", cmap="viridis", vmin=vmin, vmax=vmax, ax=ax, cbar=False,
            annot_kws={"fontsize": 7},
        )  # fmt: skip
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("candidate language", fontsize=8)
        ax.set_ylabel("query language", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.colorbar(plt.cm.ScalarMappable(norm=plt.Normalize(vmin, vmax), cmap="viridis"), ax=axes, shrink=0.6)
    fig.suptitle(title)
    return fig


def curve(frame: pd.DataFrame, factor: str, figure: str, title: str):
    """A headline figure against a swept factor: one line per strategy (mean over seeds, n in the
    legend), its seed x item interval as a band, each seed's value as a faint dot; untuned
    baselines as dashed horizontal lines.

    `frame`: rows of `groups.curve_frame` for one data set and figure, with a `line` label.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    trained = frame[frame.x.notna()].sort_values("x")
    for label, part in trained.groupby("line", sort=False):
        n = int(part.n_seeds.max()) if "n_seeds" in part else 1
        (line,) = ax.plot(part.x, part["mean"], marker="o", label=f"{label} (n={n})" if n > 1 else label)
        ax.fill_between(part.x, part.low, part.high, color=line.get_color(), alpha=0.2, linewidth=0)
        if "per_seed" in part and n > 1:  # each seed's value, faint
            xs = [x for x, values in zip(part.x, part.per_seed) for _ in values]
            ys = [v for values in part.per_seed for v in values]
            ax.scatter(xs, ys, s=9, color=line.get_color(), alpha=0.45, linewidths=0)
    for _, row in frame[frame.x.isna()].iterrows():
        ax.axhline(row["mean"], color="grey", linestyle="--", linewidth=1)
        ax.annotate(row.line, (trained.x.min() if len(trained) else 0, row["mean"]), fontsize=7, color="grey")
    ax.set_xlabel(factor)
    ax.set_ylabel(figure)
    if len(trained) and trained.x.min() > 0 and trained.x.max() / trained.x.min() >= 20:
        ax.set_xscale("log")
    ax.set_xticks(sorted(trained.x.unique()))
    ax.set_xticklabels([tick(v) for v in sorted(trained.x.unique())])
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def tradeoff(mono: pd.DataFrame, cross: pd.DataFrame, factor: str, title: str):
    """Monolingual against cross-lingual mAP: one point per run group, a strategy's factor values connected."""
    merged = mono.merge(cross, on=["group", "line", "x"], suffixes=("_mono", "_cross"))
    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    for label, part in merged[merged.x.notna()].sort_values("x").groupby("line", sort=False):
        (line,) = ax.plot(part.mean_mono, part.mean_cross, marker="o", label=label)
        for _, row in part.iterrows():
            ax.annotate(f"{row.x:g}", (row.mean_mono, row.mean_cross), fontsize=7, xytext=(3, 3),
                        textcoords="offset points", color=line.get_color())  # fmt: skip
    for _, row in merged[merged.x.isna()].iterrows():
        ax.plot(row.mean_mono, row.mean_cross, marker="x", color="grey", label=row.line)
    return _mono_cross_plane(fig, ax, f"{title}\n(numbers: {factor})")


def group_tradeoff(mono: pd.DataFrame, cross: pd.DataFrame, title: str):
    """Monolingual against cross-lingual mAP, one point per group with its 95% intervals on both
    axes: where a design has no ordered factor, the picture of "hybrid ~ X-X on mono, ~ X-Y on cross"."""
    merged = mono.merge(cross, on=["group", "baseline"], suffixes=("_mono", "_cross"))
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    for _, row in merged.iterrows():
        err_x = [[row.mean_mono - row.low_mono], [row.high_mono - row.mean_mono]]
        err_y = [[row.mean_cross - row.low_cross], [row.high_cross - row.mean_cross]]
        style = {"marker": "x", "color": "grey"} if row.baseline else {"marker": "o"}
        ax.errorbar(
            row.mean_mono, row.mean_cross, xerr=err_x, yerr=err_y, capsize=2, linewidth=0.8, label=row.group, **style
        )
    return _mono_cross_plane(fig, ax, f"{title}\n(mean over seeds, 95% intervals over seeds and items)")


def _mono_cross_plane(fig, ax, title: str):
    """Axis labels, title and legend of a monolingual vs cross-lingual mAP plot."""
    ax.set_xlabel("monolingual mAP")
    ax.set_ylabel("cross-lingual mAP")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def group_intervals(part: pd.DataFrame, figure: str, title: str):
    """One headline figure per group: its mean over seeds and 95% interval, groups top to bottom
    in the summary's order (untuned baselines grey)."""
    rows = part.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.32 * len(rows)))
    for i, row in rows.iterrows():
        color = "grey" if row.baseline else f"C{i % 10}"
        err = [[row["mean"] - row.low], [row.high - row["mean"]]]
        ax.errorbar(row["mean"], -i, xerr=err, marker="x" if row.baseline else "o", color=color, capsize=2)
    ax.set_yticks([-i for i in range(len(rows))])
    ax.set_yticklabels([str(g) for g in rows.group], fontsize=7)
    ax.set_xlabel(figure)
    ax.set_title(f"{title}\n(mean over seeds, 95% interval over seeds and items)", fontsize=10)
    fig.tight_layout()
    return fig


def tick(value: float) -> str:
    """An axis value as people write it: 40, 1,190, 5.5 M (not 5.472e+06)."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:.3g} M"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:g}"
