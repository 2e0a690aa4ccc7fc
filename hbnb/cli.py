"""The `hbnb` command: data checks and counts, model preparation, and the demo job."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

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
    elif args.name in tasks.TASKS or args.name.startswith(tasks.MTEB_PREFIX):
        counts = tasks.get_task(args.name).stats()
    else:
        raise UnknownNameError(f"unknown data set {args.name!r}; known: {', '.join([*QA_SETS, *tasks.names()])}")
    if args.json:
        print(json.dumps(counts, indent=2, ensure_ascii=False))
    else:
        for key, value in counts.items():
            print(f"{key}: {value}")
    return 0


def _lexicon_sources(args: argparse.Namespace, pair: str) -> list:
    from hbnb.codeswitch.sources import LexiconFile, ParallelText

    sources: list = list(args.source or [])
    if getattr(args, "lexicon_file", None):
        sources.append(LexiconFile(pair, args.lexicon_file))
    if getattr(args, "parallel", None):
        sources.append(ParallelText(pair, files=tuple(args.parallel)))
    return sources or ["wmt22"]


def _data_lexicon(args: argparse.Namespace) -> int:
    from hbnb.codeswitch import lexicon as lx

    lex = lx.lexicon(_lexicon_sources(args, args.pair), args.pair, args.min_count, args.min_prob)
    coverage = lx.source_coverage(lex, _lexicon_sources(args, args.pair))
    out = lex.to_json(args.top, coverage)
    if args.heldout:
        out["heldout"] = lx.heldout_hit_rate(
            _lexicon_sources(args, args.pair), args.pair, min_count=args.min_count, min_prob=args.min_prob
        )
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    pivot = f", pivoted through {lex.pivot}" if lex.pivot else ""
    print(f"{lex.pair} from {'+'.join(lex.sources)}{pivot}: {lex.size} entries, {lex.words} source words")
    if coverage is not None:
        print(f"coverage: {coverage:.1%} of the running {lex.src_lang} words of its parallel text have an entry")
    if args.heldout:
        h = out["heldout"]
        print(
            f"held-out hit rate: {h['hit_rate']} ({h['replaced']} words replaced on {h['heldout_lines']} held-out "
            f"lines; coverage there {h['coverage']})"
        )
    print(f"{'src':<20} {'tgt':<20} {'p':>6} {'count':>7}")
    for e in out["entries"]:
        print(f"{e['src']:<20} {e['tgt']:<20} {e['p']:>6.3f} {e['count']:>7}{'  (pivoted)' if e['pivoted'] else ''}")
    return 0


def _data_code_switch(args: argparse.Namespace) -> int:
    from hbnb import seeds
    from hbnb.codeswitch.switch import CodeSwitcher, realised, switch_all
    from hbnb.data.squad import load_squad
    from hbnb.errors import UnknownNameError
    from hbnb.languages import canonical

    lang = canonical(args.lang)
    targets = [canonical(x) for x in args.languages if canonical(x) != lang]
    if not targets:
        raise UnknownNameError(f"--languages {' '.join(args.languages)} names no language other than --lang {lang}")
    switcher = CodeSwitcher(
        _lexicon_sources(args, f"{lang}-{targets[0]}"), targets, args.rate, args.per, args.min_count, args.min_prob
    )
    switcher.prepare([lang])
    questions = load_squad("xquad", [lang])["question"]
    rng = seeds.rng(args.seed, "code-switch")
    n = min(args.sample, len(questions))
    chosen = sorted(rng.choice(len(questions), size=n, replace=False).tolist())
    switched = switch_all(switcher, [questions[i] for i in chosen], [lang] * n, rng)
    if args.json:
        print(json.dumps([s.to_json() for s in switched], indent=2, ensure_ascii=False))
        return 0
    for s in switched:
        print(f"- {s.original}\n  {s.text}")
    print(json.dumps(realised(switched)))
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
    from hbnb.evaluation.tasks import MTEB_PREFIX
    from hbnb.models.backends import with_backend

    out = Path(args.out)  # one evaluation set there, or each mteb task in its own folder under it
    out.mkdir(parents=True, exist_ok=True)  # a folder that cannot be made fails before the work
    targets = [(args.data, out)] if args.data else [(f"{MTEB_PREFIX}{task}", out / task) for task in args.mteb]
    if args.mteb:  # an unknown task is refused before the model loads
        from hbnb.evaluation.mteb_run import check_names

        check_names([name for name, _ in targets])
    model = with_backend(models.load(args.model, trust_remote_code=args.trust_remote_code), args.backend, args.model)
    for name, folder in targets:
        result = evaluate(
            model,
            name,
            run=args.run or args.model,
            candidates=args.candidates,
            langs=args.langs,
            run_depth=args.run_depth,
            max_items=args.max_items,
            pair_runs=args.pair_runs,
        )
        result.save(folder)
        for key, value in result.summary().items():
            print(f"{key}: {value:.4f}")
        print(f"wrote {folder} ({result.meta['wall_time_s']:.1f} s)")
    return 0


def _run(args: argparse.Namespace) -> int:
    from hbnb.experiment.pipeline import main_run

    flags = {"partition": args.partition, "time_min": args.time_min, "gpus_per_job": args.gpus_per_job}
    cluster = {k: v for k, v in flags.items() if v is not None}
    return main_run(args.params, args.reports, args.plan, args.executor, args.jobs, cluster)


def _push(args: argparse.Namespace) -> int:
    from hbnb.models.hub import format_plan, push

    plan = push(args.run, args.repo_id, private=args.private, dry_run=args.dry_run, eval_dirs=tuple(args.eval or ()))
    print(format_plan(plan, args.dry_run))
    return 0


def _findings(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hbnb.report.summary import export_findings, findings_index

    copied = export_findings(Path(args.experiment) / "report", args.out)
    index = findings_index(Path(args.out).parent)
    print(f"copied {len(copied)} files to {args.out}: {', '.join(p.name for p in copied)}; updated {index}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and for `--help` in the docs)."""
    parser = argparse.ArgumentParser(prog="hbnb", description=__doc__)
    parser.add_argument(
        "--debug", action="store_true", help="on an error, print the Python traceback too (for bug reports)"
    )
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
    for name, helptext in (
        ("lexicon", "induce (or read) a bilingual lexicon and print its size, coverage and top entries"),
        ("code-switch", "code-switch XQuAD questions with a lexicon and print what was replaced"),
    ):
        sub = data.add_parser(name, help=helptext)
        sub.add_argument(
            "--source",
            action="append",
            help="wmt22, tatoeba or xquad; repeat to combine (default: wmt22)",
        )
        sub.add_argument("--lexicon-file", help="your lexicon of the pair: 'src<TAB>tgt' or MUSE 'src tgt' lines")
        sub.add_argument("--parallel", nargs=2, metavar=("FILE_A", "FILE_B"), help="your line-aligned parallel text")
        sub.add_argument("--min-count", type=int, default=2, help="keep entries with at least N links (default 2)")
        sub.add_argument(
            "--min-prob", type=float, default=0.05, help="keep entries with p(tgt|src) >= P (default 0.05)"
        )
        sub.add_argument("--json", action="store_true", help="print JSON")
        if name == "lexicon":
            sub.add_argument("--pair", required=True, help="the direction, e.g. en-de (pivots through en if needed)")
            sub.add_argument("--top", type=int, default=20, help="entries to print, by count (default 20)")
            sub.add_argument("--heldout", action="store_true", help="also measure the held-out hit rate (90/10 lines)")
            sub.set_defaults(func=_data_lexicon)
        else:
            sub.add_argument("--lang", default="en", help="the questions' language (default en)")
            sub.add_argument(
                "--languages", nargs="+", required=True, help="languages to switch into (--lang is skipped)"
            )
            sub.add_argument("--rate", type=float, default=0.5, help="probability of replacing an eligible word")
            sub.add_argument("--per", choices=["text", "word"], default="text", help="one target per text or per word")
            sub.add_argument("--sample", type=int, default=20, help="how many questions (a seeded draw)")
            sub.add_argument("--seed", type=int, default=0)
            sub.set_defaults(func=_data_code_switch)

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
    what = ev.add_mutually_exclusive_group(required=True)
    what.add_argument("--data", help="a registered evaluation set, e.g. xquad-r (hbnb.evaluation.tasks)")
    what.add_argument(
        "--mteb",
        nargs="+",
        metavar="TASK",
        help="mteb retrieval tasks scored by mteb's evaluator, e.g. SciFact MIRACLRetrieval (data from the hub), "
        "or hbnb's own sets, e.g. xquad-r; each into OUT/<TASK>/ (hbnb.evaluation.mteb_run)",
    )
    ev.add_argument(
        "--out",
        required=True,
        help="folder for metrics.parquet/.csv, per_query.parquet, run.trec, qrels.trec and mteb/ (MTEB result files)",
    )
    ev.add_argument(
        "--candidates",
        choices=["paragraph", "sentence"],
        default="paragraph",
        help="encode candidates as the sentence with its paragraph (LAReQA, default) or alone",
    )
    ev.add_argument("--langs", nargs="+", help="restrict to these languages (tatoeba: xxx languages; wmt22: pairs)")
    ev.add_argument("--run", help="the run's name in the tables (default: the model spec)")
    ev.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let the model folder run its own Python (custom module classes, a config's auto_map); "
        "only for a model you trust",
    )
    ev.add_argument("--run-depth", type=int, default=1000, help="candidates per query in run.trec (default 1000)")
    ev.add_argument(
        "--pair-runs",
        action="store_true",
        help="also write run.pairs.trec / qrels.pairs.trec: one ranking per query and candidate language "
        "(query id QUERY@LANG), from which trec_eval recomputes every per-pair value",
    )
    ev.add_argument(
        "--max-items",
        type=int,
        help="evaluate a pair-matrix retrieval set on N of its items (a quick look; not comparable with the full set)",
    )
    ev.add_argument(
        "--backend",
        choices=["torch", "openvino", "openvino-bf16"],
        default="torch",
        help="what runs the encoder on CPU: torch (default); openvino (fp32, the same embeddings, faster); "
        "openvino-bf16 (bf16 where the CPU has it). The converted model is cached like the model",
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
    run.add_argument(
        "--executor",
        choices=["local", "slurm"],
        default="local",
        help="local: this machine (default); slurm: one job per run through submitit, as the file's "
        "cluster: block asks (the command waits for the jobs)",
    )
    run.add_argument(
        "--jobs",
        type=int,
        help="local: worker processes running independent runs at once, one GPU each (default: one per GPU, "
        "else 1, i.e. in this process); slurm: jobs queued at once",
    )
    run.add_argument("--partition", help="slurm: the partition (overrides cluster.partition)")
    run.add_argument("--time-min", type=int, help="slurm: each job's time limit in minutes (cluster.time_min)")
    run.add_argument("--gpus-per-job", type=int, help="slurm: GPUs of each training job (cluster.gpus_per_job)")
    run.set_defaults(func=_run)

    findings = commands.add_parser(
        "findings", help="copy an experiment's report summary (summary.md, CSVs, curves) into a findings folder"
    )
    findings.add_argument("experiment", help="the experiment folder, e.g. reports/q1-languages-cpu")
    findings.add_argument("out", help="the findings folder, e.g. reports/findings/q1-languages")
    findings.set_defaults(func=_findings)

    push = commands.add_parser(
        "push", help="upload a trained model folder, its model card refreshed with the run's evaluations, to the hub"
    )
    push.add_argument("run", help="an experiment run folder (reports/<experiment>/<run>) or a training output folder")
    push.add_argument("--repo-id", required=True, help="the hub repo, ORG/NAME (created if missing)")
    push.add_argument("--private", action="store_true", help="create the repo private (default: public)")
    push.add_argument(
        "--dry-run", action="store_true", help="refresh the model card and list what would be uploaded; no network"
    )
    push.add_argument(
        "--eval",
        action="append",
        metavar="FOLDER",
        help="more evaluations for the card: an `hbnb evaluate --out` folder or a folder of them (repeatable)",
    )
    push.set_defaults(func=_push)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; hbnb's own errors print one clear line and exit with status 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HbnbError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"hbnb: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder or file of the user's that cannot be made, read or written
        if args.debug:
            traceback.print_exc()
        where = f" {exc.filename}" if exc.filename else ""
        print(
            f"hbnb: error: cannot use{where}: {exc.strerror or exc}; check the path and its permissions "
            "(--debug shows where)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("hbnb: interrupted; finished stages and checkpoints are kept: run the same command to continue",
              file=sys.stderr)  # fmt: skip
        return 130
