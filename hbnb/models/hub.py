"""`hbnb push RUN --repo-id ORG/NAME`: a trained model folder, with its refreshed model card, onto the hub.

RUN is an experiment run folder (`reports/<experiment>/<run>/`, the model in `train/model/`),
a training output folder (`output_dir` of `hbnb train`, the model in `model/`), or a model
folder itself. `push` finds the model folder, rewrites its model card with the run's
records and every evaluation found by then (`hbnb.models.card`: `<run>/eval/<set>/`, plus
any `eval` folders given), then uploads the folder through `huggingface_hub`:
`HfApi.create_repo(..., exist_ok=True)` and `HfApi.upload_folder`, as sentence-transformers'
own `push_to_hub` does. Training state is never uploaded (`EXCLUDED`: checkpoints,
optimizer and scheduler state, RNG state, trainer state and arguments, hbnb's lock and
temporary files).

`dry_run` refreshes the card too, and lists what would be uploaded (repo, visibility, each
file and its size, the total, what is left out) without touching the network. A real push needs a token
(`hf auth login`, or HF_TOKEN) and a reachable hub; when either is missing, or the hub
refuses, it raises one `HubError` saying which and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from hbnb.errors import HbnbError, ModelNotFoundError, ParamsError
from hbnb.files import TMP_PREFIX
from hbnb.models import card

MODULES = "modules.json"  # what marks a sentence-transformers model folder
# training state that a model repo does not need, at the folder's top level or below
_STATE = (
    "checkpoint-*",
    "optimizer.pt",
    "scheduler.pt",
    "rng_state*.pth",
    "trainer_state.json",
    "training_args.bin",
    "scaler.pt",
    ".lock",
    f"{TMP_PREFIX}*",
)
EXCLUDED: tuple[str, ...] = tuple(p for name in _STATE for p in (name, f"*/{name}", f"{name}/*", f"*/{name}/*"))


class HubError(HbnbError):
    """A push the hub cannot take now: offline, no token, or refused (the message says which)."""


@dataclass(frozen=True)
class PushPlan:
    """What a push uploads: the repo, its visibility, the model folder and its files (path, bytes)."""

    repo_id: str
    private: bool
    model_dir: Path
    card: Path
    evaluations: tuple[str, ...]
    files: tuple[tuple[str, int], ...]
    excluded: tuple[tuple[str, int], ...] = ()
    url: str | None = field(default=None)  # the commit's address after a real push

    @property
    def total(self) -> int:
        return sum(size for _, size in self.files)


def find_model(run: Path | str) -> tuple[Path, Path | None, list[Path]]:
    """The model folder inside `run`, its training output folder (None: none), and its evaluation folders.

    Raises ModelNotFoundError naming what was looked for when `run` holds no model.
    """
    run = Path(run)
    if not run.is_dir():
        raise ModelNotFoundError(f"{run}: no such folder; give an experiment run folder or a training output folder")
    for model, training in (
        (run / "train" / "model", run / "train"),  # an experiment run
        (run / "model", run),  # a training output folder
        (run, run.parent),  # a model folder: a training's final model/, a checkpoint, any other
    ):
        if (model / MODULES).is_file():
            if model == run and (run.name != "model" or not (training / "run.json").is_file()):
                training = None  # not a training's final model (a checkpoint is not what run.json describes)
            evals = {run / "eval"}
            if training is not None and training.name == "train":  # an experiment run: <run>/train, <run>/eval
                evals.add(training.parent / "eval")
            return model, training, sorted(e for e in evals if e.is_dir())
    hint = " (an untuned baseline has no model of its own)" if (run / "eval" / "info.json").is_file() else ""
    raise ModelNotFoundError(
        f"{run} holds no trained model{hint}: looked for {run / 'train' / 'model' / MODULES} (an experiment run), "
        f"{run / 'model' / MODULES} (a training output folder) and {run / MODULES} (a model folder); "
        "train one with `hbnb train` or `hbnb run`, or give the folder that holds it"
    )


def push(
    run: Path | str,
    repo_id: str,
    private: bool = False,
    dry_run: bool = False,
    eval_dirs: tuple[Path | str, ...] = (),
) -> PushPlan:
    """Refresh the model card of `run`'s model and upload the model folder to `repo_id` (see the module
    docstring); with `dry_run`, only the plan. Returns the plan (with the commit's `url` after a push)."""
    _check_repo_id(repo_id)
    model, training, evals = find_model(run)
    token = None if dry_run else _ready()  # before any change: a push that cannot happen changes nothing
    record = card.read_training(training) if training is not None else None
    evaluations = card.read_evaluations([*evals, *map(Path, eval_dirs)])
    readme = card.write_card(model, record, evaluations, model_id=repo_id)
    files, excluded = upload_files(model)
    plan = PushPlan(repo_id, private, model, readme, tuple(e.dataset for e in evaluations), files, excluded)
    if dry_run:
        return plan
    return replace(plan, url=_upload(plan, token))


def upload_files(model_dir: Path) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]:
    """The files `upload_folder` sends from `model_dir` and those `EXCLUDED` keeps back, with their sizes.

    The same filter as `HfApi.upload_folder` (its default ignores included), so a dry run lists what a push sends.
    """
    from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

    everything = {p.relative_to(model_dir).as_posix(): p.stat().st_size for p in model_dir.rglob("*") if p.is_file()}
    sent = set(filter_repo_objects(sorted(everything), ignore_patterns=[*EXCLUDED, *DEFAULT_IGNORE_PATTERNS]))
    files = tuple((name, size) for name, size in sorted(everything.items()) if name in sent)
    kept = tuple((name, size) for name, size in sorted(everything.items()) if name not in sent)
    return files, kept


def format_plan(plan: PushPlan, dry_run: bool) -> str:
    """The plan as `hbnb push` prints it: repo, visibility, files with sizes, total, exclusions."""
    width = max((len(name) for name, _ in plan.files), default=10)
    lines = [
        f"repo: {plan.repo_id} ({'private' if plan.private else 'public'}, if the push creates it)",
        f"model: {plan.model_dir}",
        f"model card: {plan.card} (evaluations: {', '.join(plan.evaluations) or 'none found'})",
        f"{'would upload' if dry_run else 'uploaded'} {len(plan.files)} files:",
        *(f"  {name:<{width}}  {size:>15,} bytes" for name, size in plan.files),
        f"total: {plan.total:,} bytes ({_human(plan.total)}) in {len(plan.files)} files",
    ]
    if plan.excluded:
        lines.append(f"left out (training state): {', '.join(_grouped(plan.excluded))}")
    lines.append("dry run: nothing uploaded, no network used" if dry_run else f"commit: {plan.url}")
    return "\n".join(lines)


def _check_repo_id(repo_id: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ParamsError(
            f"--repo-id {repo_id!r} is not a hub repo id: {exc} Give ORG/NAME, e.g. my-org/me5-hybrid"
        ) from None
    if repo_id.count("/") != 1:
        raise ParamsError(f"--repo-id {repo_id!r}: give the namespace too, as ORG/NAME (your user name or an org)")


def _ready() -> str:
    """The token to push with; HubError when the hub is switched off here or there is no token."""
    import huggingface_hub
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise HubError(
            "the hub is switched off here (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set): unset it on a machine "
            "that reaches huggingface.co, or use --dry-run to see what would be uploaded"
        )
    token = huggingface_hub.get_token()
    if not token:
        raise HubError(
            "no Hugging Face token: log in with `hf auth login` (`huggingface-cli login` in older huggingface_hub) "
            "or set HF_TOKEN to a token with write access, then push again"
        )
    return token


def _upload(plan: PushPlan, token: str) -> str:
    """create_repo + upload_folder; the hub's failures become one HubError."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub import errors as hub_errors

    transport = (ConnectionError, TimeoutError, getattr(hub_errors, "HTTPError", ConnectionError))
    api = HfApi(token=token)
    try:
        api.create_repo(plan.repo_id, private=plan.private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(
            folder_path=plan.model_dir,
            repo_id=plan.repo_id,
            repo_type="model",
            ignore_patterns=list(EXCLUDED),
            commit_message=f"hbnb push of {_run_name(plan.model_dir)}",
        )
    except hub_errors.OfflineModeIsEnabled as exc:
        raise HubError(f"the hub is switched off here ({exc}); unset HF_HUB_OFFLINE to push") from exc
    except hub_errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        why = {
            401: "the token was rejected: log in again (`hf auth login`) or set a valid HF_TOKEN",
            403: f"the token may not write to {plan.repo_id.split('/')[0]}: use a write token, or a namespace you own",
        }.get(status, f"the hub refused it: {exc.server_message or exc}")
        said = f" (the hub said: {exc.server_message})" if exc.server_message and status in (401, 403) else ""
        raise HubError(f"push to {plan.repo_id} failed ({status}): {why}{said}") from exc
    except transport as exc:
        raise HubError(
            f"cannot reach the hub ({constants.ENDPOINT}) to push {plan.repo_id}: {exc}; check the network, "
            "or use --dry-run"
        ) from exc
    return str(commit.commit_url)


def _run_name(model_dir: Path) -> str:
    """The run a model folder belongs to: <run>/train/model -> <run>, <output_dir>/model -> <output_dir>."""
    parent = model_dir.parent
    return parent.parent.name if parent.name == "train" else parent.name or model_dir.name


def _grouped(files: tuple[tuple[str, int], ...]) -> list[str]:
    """Files left out, a folder's files as one entry: "checkpoint-3/ (11 files, 812.0 MiB)"."""
    groups: dict[str, list[int]] = {}
    for name, size in files:
        top, _, rest = name.partition("/")
        groups.setdefault(f"{top}/" if rest else top, []).append(size)
    return [
        f"{name} ({len(sizes)} files, {_human(sum(sizes))})"
        if name.endswith("/")
        else f"{name} ({_human(sum(sizes))})"
        for name, sizes in groups.items()
    ]


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{size} B"
        value /= 1024
    return f"{size} B"
