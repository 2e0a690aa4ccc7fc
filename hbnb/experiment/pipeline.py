"""`hbnb run params/X.yaml`: the stage notebooks of an experiment, executed with papermill.

Layout of `reports/<experiment>/`:
- `data/01_data.ipynb|.html`: the data (languages, counts, an example per language);
- `<run>/02_train.ipynb|.html` and `<run>/train/` (model, loss curve, batch log);
- `<run>/03_evaluate.ipynb|.html` and `<run>/eval/<data set>/` (metrics, per-query values);
- `baseline-<model>/03_evaluate.*`: the untuned model, shared by every run that uses it;
- `report/04_report.ipynb|.html`: the comparison across runs; `index.html` links them all.

A stage is skipped when its completion record holds the same fingerprint (its
notebook, its inputs, the fingerprints of the stages it reads) and its outputs
exist. A failing stage leaves every earlier output intact and its notebook saved
with the error visible; the next `hbnb run` continues from there. A lock keeps two
`hbnb run`s off one experiment folder.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hbnb.errors import FolderBusyError, HbnbError
from hbnb.experiment.sweep import RunSpec, baselines, designs, group_name, load, runs
from hbnb.files import exclusive, write_text
from hbnb.params import ExperimentParams, validate
from hbnb.progress import quiet_kernels

KERNEL = "python3"


class RunLockedError(FolderBusyError):
    """Another `hbnb run` is working on the same experiment folder."""


class StageFailed(HbnbError):
    """A stage notebook raised; its saved notebook and HTML show the error."""


@dataclass(frozen=True)
class Stage:
    """One notebook execution: where it writes, what it reads, what marks it done."""

    key: str  # unique, e.g. "train/strategy-hybrid"
    notebook: str  # template under notebooks/
    folder: Path
    parameters: dict[str, Any]  # injected by papermill
    inputs: dict[str, Any]  # what decides its outputs (hashed into the fingerprint)
    outputs: list[str]  # files under `folder` that must exist when it is done
    depends: list[str] = field(default_factory=list)

    @property
    def executed(self) -> Path:
        return self.folder / self.notebook

    @property
    def html(self) -> Path:
        return self.executed.with_suffix(".html")

    @property
    def record(self) -> Path:
        return self.folder / f".{Path(self.notebook).stem}.done.json"


def _kernel_manager_class() -> type:
    """Kernels on local IPC sockets (under the temp folder) instead of unencrypted TCP ports."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = os.path.join(tempfile.gettempdir(), f"hbnb-kernel-{uuid.uuid4().hex}")

    return quiet_kernels(IPCKernelManager)  # no progress bars in the executed notebooks


def notebooks_dir() -> Path:
    """The stage notebook templates: `$HBNB_NOTEBOOKS`, else `notebooks/` of the checkout."""
    env = os.environ.get("HBNB_NOTEBOOKS")
    folder = Path(env) if env else Path(__file__).resolve().parents[2] / "notebooks"
    if not (folder / "01_data.ipynb").is_file():
        raise HbnbError(f"no stage notebooks in {folder}; run hbnb from its checkout or set HBNB_NOTEBOOKS")
    return folder


def plan(params: ExperimentParams, params_path: Path, reports: Path) -> list[Stage]:
    """Every stage of the experiment in execution order."""
    root = reports / params.experiment
    specs = runs(params, str(params_path))
    stages = [_data_stage(params, specs, root, params_path)]
    for base in baselines(params, specs):
        stages.append(
            _evaluate_stage(root / base.name, base.name, base.model, base.model, base.data, params, [], baseline=True)
        )
    for spec in specs:
        stages.append(_train_stage(spec, root, params))
        model = str(root / spec.name / "train" / "model")
        stages.append(
            _evaluate_stage(root / spec.name, spec.name, model, spec.model, spec.data, params, [f"train/{spec.name}"])
        )
    stages.append(
        Stage(
            "report",
            "04_report.ipynb",
            root / "report",
            {"experiment_dir": str(root), "n_resamples": params.report.n_resamples, "claims": list(params.claims)},
            {"n_resamples": params.report.n_resamples, "claims": list(params.claims)},
            ["summary.csv"],
            [s.key for s in stages if s.key.startswith("evaluate/")],
        )
    )
    return stages


def _data_stage(params: ExperimentParams, specs: list[RunSpec], root: Path, params_path: Path) -> Stage:
    data = sorted({s.data.model_dump_json() for s in specs})
    return Stage(
        "data",
        "01_data.ipynb",
        root / "data",
        {"params_path": str(params_path.resolve()), "out_dir": str(root / "data")},
        {"data": data},
        ["data.json"],
    )


def _train_stage(spec: RunSpec, root: Path, params: ExperimentParams) -> Stage:
    folder = root / spec.name
    train = spec.train.model_copy(update={"output_dir": folder / "train"})
    return Stage(
        f"train/{spec.name}",
        "02_train.ipynb",
        folder,
        {"params_path": str(folder / "train_params.yaml"), "keep_checkpoints": params.keep_checkpoints},
        {"train": json.loads(train.model_dump_json()), "values": spec.values},
        ["train/run.json", "train/model/modules.json"],
        ["data"],
    )


def _evaluate_stage(
    folder: Path,
    name: str,
    model: str,
    label: str,
    data: Any,
    params: ExperimentParams,
    depends: list[str],
    baseline: bool = False,
) -> Stage:
    parameters = {
        "model": model,
        "label": label,
        "run": name,
        "datasets": list(data.evaluate),
        "langs": dict(data.langs),
        "candidates": data.candidates,
        "out_dir": str(folder / "eval"),
        "n_resamples": params.report.n_resamples,
        "run_depth": params.report.run_depth,
        "baseline": baseline,
        "max_items": dict(data.max_items),
        "trust_remote_code": params.trust_remote_code,
        "backend": params.report.backend,
    }
    # without max_items (trust_remote_code, a backend other than torch) the inputs are as before they existed
    unset = {"max_items": {}, "trust_remote_code": False, "backend": "torch"}
    inputs = {k: v for k, v in parameters.items() if k not in unset or v != unset[k]}
    return Stage(
        f"evaluate/{name}",
        "03_evaluate.ipynb",
        folder,
        parameters,
        inputs,
        [f"eval/{d}/metrics.parquet" for d in data.evaluate],
        ["data", *depends],
    )


def fingerprint(stage: Stage, upstream: dict[str, str], notebooks: Path) -> str:
    """What a stage's outputs depend on: its notebook, its inputs (less the trackers a run reports to), its upstream
    stages."""
    from hbnb.training.trainer import without_trackers

    inputs = {k: without_trackers(v) if k == "train" else v for k, v in stage.inputs.items()}
    blob = json.dumps(
        {
            "notebook": hashlib.sha256((notebooks / stage.notebook).read_bytes()).hexdigest(),
            "inputs": inputs,
            "upstream": {k: upstream[k] for k in stage.depends},
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def is_done(stage: Stage, fp: str) -> bool:
    """Done: the completion record has this fingerprint and every output exists."""
    try:
        record = json.loads(stage.record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return record.get("fingerprint") == fp and all((stage.folder / o).exists() for o in stage.outputs)


def finished_at(stage: Stage) -> str:
    """When the stage's outputs were made ("YYYY-mm-dd HH:MM:SS", its completion record), or ""."""
    try:
        return str(json.loads(stage.record.read_text(encoding="utf-8")).get("finished", ""))
    except (OSError, ValueError):
        return ""


def run(
    params_path: Path | str,
    reports: Path | str = "reports",
    echo: Callable[[str], None] = print,
    executor: str = "local",
    jobs: int | None = None,
    cluster: dict[str, Any] | None = None,
) -> Path:
    """Execute (or resume) an experiment; returns its index.html.

    `executor`/`jobs`: "local" with one worker (the default without GPUs) runs every stage in
    this process; more workers run independent runs in parallel; "slurm" submits a job per run
    (`hbnb.experiment.executors`). `cluster`: keys that override the file's `cluster:` block.
    """
    from hbnb.cluster import ClusterParams
    from hbnb.experiment.schedule import drive

    params_path = Path(params_path)
    params = load(params_path)
    designs(runs(params, str(params_path)), str(params_path))  # refuse impossible designs before any stage
    reports = Path(reports).resolve()
    root = reports / params.experiment
    settings = params.cluster
    if cluster:
        base = settings.model_dump() if settings is not None else {}
        settings = validate(ClusterParams, {**base, **cluster}, f"{params_path} (cluster: with the command's flags)")
    with exclusive(root, "being run by another `hbnb run`", RunLockedError):
        return drive(params, params_path, root, plan(params, params_path, reports), executor, jobs, settings, echo)


def execute(stage: Stage, notebooks: Path, fp: str, processes: int = 1) -> None:
    """Run one notebook into its folder; export HTML either way; record success last.

    `processes` > 1: a training stage first trains with that many DDP processes (torchrun);
    its notebook then finds the finished run and shows it.
    """
    import papermill

    stage.folder.mkdir(parents=True, exist_ok=True)
    stage.record.unlink(missing_ok=True)
    began = time.perf_counter()
    if stage.key.startswith("train/"):
        train = stage.inputs["train"]
        write_text(Path(stage.parameters["params_path"]), yaml.safe_dump(train, sort_keys=False, allow_unicode=True))
        write_text(
            stage.folder / "run_spec.json",
            json.dumps(
                {
                    "name": stage.folder.name,
                    "group": group_name(stage.inputs["values"]),
                    "seed": train["seed"],
                    "values": stage.inputs["values"],
                },
                indent=2,
            ),
        )
        if processes > 1:
            from hbnb.experiment.executors import torchrun

            try:
                torchrun(Path(stage.parameters["params_path"]), processes)
            except HbnbError as exc:
                raise StageFailed(f"stage {stage.key} failed: {exc}") from None
    try:
        papermill.execute_notebook(
            str(notebooks / stage.notebook),
            str(stage.executed),
            parameters=stage.parameters,
            kernel_name=KERNEL,
            cwd=str(stage.folder),
            progress_bar=False,
            kernel_manager_class=_kernel_manager_class(),
        )
    except papermill.PapermillExecutionError as exc:
        export_html(stage.executed, stage.html, hide_input=stage.key == "report")
        raise StageFailed(
            f"stage {stage.key} failed: {exc.ename}: {exc.evalue.rstrip('.')}. "
            f"The notebook with the error: {stage.html}. "
            f"Fix the cause and run the same command again; finished stages are kept."
        ) from None
    export_html(stage.executed, stage.html, hide_input=stage.key == "report")
    if stage.key.startswith("train/") and not stage.parameters["keep_checkpoints"]:
        for checkpoint in (stage.folder / "train").glob("checkpoint-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)
    record = {"fingerprint": fp, "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    if stage.key.startswith("evaluate/"):
        record["inputs"] = stage.inputs  # what set_aside_stale compares when the file changes
    write_text(
        stage.record, json.dumps({**record, "seconds": round(time.perf_counter() - began, 1)}, indent=2, default=str)
    )


def export_html(notebook: Path, target: Path, hide_input: bool = False) -> None:
    """The executed notebook as one self-contained HTML page (figures embedded).

    `hide_input`: leave the code cells out of the page (the report, read by people who
    do not want the code); the executed notebook keeps them. A failed cell's error
    output is still shown.
    """
    import nbformat
    from nbconvert import HTMLExporter

    if not notebook.is_file():
        return
    exporter = HTMLExporter(template_name="lab", exclude_input=hide_input, exclude_input_prompt=hide_input)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    write_text(target, body)


def write_index(root: Path, stages: list[Stage]) -> Path:
    """`index.html`: every stage's page with its state, the comparison report first."""
    rows = []
    for stage in [s for s in stages if s.key == "report"] + [s for s in stages if s.key != "report"]:
        state = "done" if stage.record.is_file() else "failed" if stage.executed.is_file() else "not run"
        link = stage.html.relative_to(root).as_posix()
        cell = (
            f'<a href="{html.escape(link)}">{html.escape(stage.key)}</a>'
            if stage.html.is_file()
            else html.escape(stage.key)
        )
        rows.append(f"<tr><td>{cell}</td><td class='{state.replace(' ', '-')}'>{state}</td></tr>")
    summary = root / "report" / "summary.html"
    table = (
        summary.read_text(encoding="utf-8") if summary.is_file() else "<p>The comparison report is not ready yet.</p>"
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(root.name)} - hbnb</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}} .done{{color:#070}} .failed{{color:#b00}} .not-run{{color:#777}}</style>
</head><body>
<h1>Experiment {html.escape(root.name)}</h1>
<h2>Summary</h2>
{table}
<h2>Stages</h2>
<table><tr><th>stage</th><th>state</th></tr>
{chr(10).join(rows)}
</table>
<p>Parameters: <a href="params.yaml">params.yaml</a>. Made by hbnb.</p>
</body></html>
"""
    return write_text(root / "index.html", page)


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def main_run(
    path: str,
    reports: str,
    show_plan: bool = False,
    executor: str = "local",
    jobs: int | None = None,
    cluster: dict[str, Any] | None = None,
) -> int:
    """The `hbnb run` command body: one clear line per problem, exit 1 when a stage failed.

    `show_plan`: validate everything and print the planned runs as JSON; run nothing.
    """
    if show_plan:
        from hbnb.experiment.sweep import plan_json

        print(json.dumps(plan_json(load(path), path), indent=2, ensure_ascii=False))
        return 0
    try:
        run(path, reports, executor=executor, jobs=jobs, cluster=cluster)
    except StageFailed as exc:
        print(f"hbnb: {exc}", file=sys.stderr)
        return 1
    return 0
