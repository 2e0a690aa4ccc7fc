"""The `hbnb` command: data checks and counts, model preparation, and the demo job."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from hbnb.errors import HbnbError


def _data_check(args: argparse.Namespace) -> int:
    from hbnb.data.store import check, data_root

    root = data_root()
    statuses = check(root, download=args.download)
    if args.json:
        print(json.dumps([s.__dict__ for s in statuses], indent=2))
    else:
        print(f"data root: {root}")
        by_set: dict[str, list] = {}
        for s in statuses:
            by_set.setdefault(s.dataset, []).append(s)
        for name, rows in by_set.items():
            ok = sum(s.status == "verified" for s in rows)
            print(f"  {name:<8} {ok:>3}/{len(rows):<3} files verified")
            for s in rows:
                if s.status != "verified":
                    print(f"           {s.status}: {s.path} ({s.detail})")
    bad = [s for s in statuses if s.status == "mismatch" or (s.status == "missing" and "license" not in s.detail)]
    return 1 if bad else 0


def _data_stats(args: argparse.Namespace) -> int:
    from hbnb.data.catalog import parallel_qa_stats
    from hbnb.data.parallel_qa import QA_SETS
    from hbnb.errors import UnknownNameError
    from hbnb.evaluation import tasks

    if args.name in QA_SETS:
        counts = parallel_qa_stats(args.name)
    elif args.name in tasks.TASKS:
        counts = tasks.get_task(args.name).stats()
    else:
        raise UnknownNameError(f"unknown data set {args.name!r}; known: {', '.join([*QA_SETS, *tasks.names()])}")
    if args.json:
        print(json.dumps(counts, indent=2, ensure_ascii=False))
    else:
        for key, value in counts.items():
            print(f"{key}: {value}")
    return 0


def _models_prepare(args: argparse.Namespace) -> int:
    from hbnb.models import prepare

    for spec, folder in prepare(tuple(args.specs)).items():
        print(f"{spec}: {folder if folder is not None else 'ready (built from its wheel at load time)'}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from hbnb.training import load_params, train
    from hbnb.training.distributed import process_rank

    folder = train(load_params(args.params))
    if process_rank() == 0:
        print(f"model: {folder}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from hbnb import models
    from hbnb.evaluation import evaluate

    model = models.load(args.model)
    result = evaluate(
        model,
        args.data,
        run=args.run or args.model,
        candidates=args.candidates,
        langs=args.langs,
        run_depth=args.run_depth,
        max_items=args.max_items,
    )
    folder = result.save(args.out)
    for key, value in result.summary().items():
        print(f"{key}: {value:.4f}")
    print(f"wrote {folder} ({result.meta['wall_time_s']:.1f} s)")
    return 0


def _run(args: argparse.Namespace) -> int:
    from hbnb.experiment.pipeline import main_run

    return main_run(args.params, args.reports, show_plan=args.plan)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and for `--help` in the docs)."""
    parser = argparse.ArgumentParser(prog="hbnb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="check and count the data sets").add_subparsers(
        dest="data_command", required=True
    )
    check = data.add_parser("check", help="verify every data file against the shipped checksums")
    check.add_argument("--json", action="store_true", help="print one JSON record per file")
    check.add_argument("--download", action="store_true", help="download missing files into the data root")
    check.set_defaults(func=_data_check)
    stats = data.add_parser("stats", help="counts of a data set (queries, candidates, languages)")
    stats.add_argument(
        "name", help="a training set (xquad, mlqa) or a registered evaluation set (hbnb.evaluation.tasks)"
    )
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=_data_stats)

    models = commands.add_parser("models", help="built-in models").add_subparsers(dest="models_command", required=True)
    prepare = models.add_parser("prepare", help="build the caches of built-in models (me5-small)")
    prepare.add_argument("specs", nargs="*", default=["me5-small"])
    prepare.set_defaults(func=_models_prepare)

    train = commands.add_parser("train", help="fine-tune an encoder with a batch strategy (resumes if rerun)")
    train.add_argument("params", help="a YAML file of training parameters (hbnb.training.TrainParams)")
    train.set_defaults(func=_train)

    ev = commands.add_parser(
        "evaluate", help="score a model on a data set; writes metrics, per-query values, TREC files"
    )
    ev.add_argument("--model", required=True, help="use-m, me5-small, a local folder or a hub id")
    ev.add_argument("--data", required=True, help="a registered evaluation set, e.g. xquad-r (hbnb.evaluation.tasks)")
    ev.add_argument(
        "--out", required=True, help="folder for metrics.parquet/.csv, per_query.parquet, run.trec, qrels.trec"
    )
    ev.add_argument(
        "--candidates",
        choices=["paragraph", "sentence"],
        default="paragraph",
        help="encode candidates as the sentence with its paragraph (LAReQA, default) or alone",
    )
    ev.add_argument("--langs", nargs="+", help="restrict to these languages (tatoeba: xxx languages; wmt22: pairs)")
    ev.add_argument("--run", help="the run's name in the tables (default: the model spec)")
    ev.add_argument("--run-depth", type=int, default=1000, help="candidates per query in run.trec (default 1000)")
    ev.add_argument(
        "--max-items",
        type=int,
        help="evaluate a pair-matrix retrieval set on N of its items (a quick look; not comparable with the full set)",
    )
    ev.set_defaults(func=_evaluate)

    run = commands.add_parser("run", help="execute an experiment's stage notebooks into reports/<experiment>/")
    run.add_argument("params", help="an experiment file, e.g. params/demo.yaml")
    run.add_argument("--reports", default="reports", help="the reports folder (default: reports)")
    run.add_argument(
        "--plan",
        action="store_true",
        help="validate the file against its data and print the planned runs as JSON (name, group, seed, "
        "resolved params); run nothing",
    )
    run.set_defaults(func=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; hbnb's own errors print one clear line and exit with status 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HbnbError as exc:
        print(f"hbnb: error: {exc}", file=sys.stderr)
        return 2
