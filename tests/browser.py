"""Helpers for tests that need real results or a real browser: shared by the explorer's tests and
any other browser test (an HTML report, say).

- `build_tiny_experiment`: a genuine experiment folder (an untuned baseline and a 10-step
  hybrid run of use-m, both evaluated on MLQA-R en/de/es and Tatoeba de/es-en) with the files `hbnb run` leaves that
  readers of `reports/` use (`eval/`, `run_spec.json`, `train/`), so they are tested on real
  evaluations, not hand-made tables.
- `chromium_path` / `launch_chromium`: the system Chromium (Debian's `chromium` package)
  driven by Playwright; `playwright install` cannot download browsers here, so tests
  never depend on it.
- `JupyterLab`: a real JupyterLab server on a free port, started and stopped around a test;
  `run_all_cells` opens a notebook in it and runs it from the Run menu; `wait_until_idle`
  waits for the kernel to finish what a widget change asked of it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
# Headless, offline, quiet: no sandbox (root in containers), no GPU, no background traffic
# that would stall on a machine without internet.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EXPERIMENT = "tiny"
LANGS = ["en", "de", "es"]
DATASETS = ["mlqa-r", "tatoeba"]  # one retrieval set with a multilingual pool, one bitext set
BASELINE_RUN = "baseline-use-m"
TRAINED_RUN = "strategy-hybrid"


# ----------------------------------------------------------------------------- real results


def build_tiny_experiment(reports: Path, experiment: str = EXPERIMENT) -> Path:
    """Evaluate untuned use-m and a 10-step hybrid run of it on MLQA-R (en, de, es; 400 of its items) and
    Tatoeba (de, es) under `reports/<experiment>/`.

    Training runs on one CPU thread: its weights then come out bit-identical on every build, so
    the trained model's fingerprint repeats and hbnb's embedding cache serves its evaluation
    from the second build on (multi-threaded CPU training differs in the last bits from run to
    run, and is slower on 2 cores). First build about a minute and a half on 2 cores, later ones
    about half a minute. Returns the experiment folder.
    """
    from hbnb.evaluation import evaluate_to
    from hbnb.params import BatchingParams, TrainParams
    from hbnb.training import train

    root = reports / experiment
    evaluate_kwargs: dict[str, Any] = {
        "langs": {"mlqa-r": LANGS, "tatoeba": ["de", "es"]},
        "candidates": "sentence",
        "n_resamples": 200,
        "run_depth": 10,
        "max_items": {"mlqa-r": 400},  # 400 of its items: enough for significant and non-significant pairs
    }
    evaluate_to(root / BASELINE_RUN / "eval", "use-m", BASELINE_RUN, DATASETS, baseline=True, **evaluate_kwargs)
    run = root / TRAINED_RUN
    params = TrainParams(
        model="use-m",
        data="xquad",
        output_dir=run / "train",
        max_steps=10,
        learning_rate=1e-4,
        save_steps=10,
        freeze_word_embeddings=True,
        batching=BatchingParams(strategy="hybrid", languages=LANGS, batch_size=16),
    )
    with torch_threads(1):
        model = train(params)
    for checkpoint in (run / "train").glob("checkpoint-*"):  # as `hbnb run` leaves a finished run: 300 MB less
        shutil.rmtree(checkpoint)
    evaluate_to(run / "eval", str(model), TRAINED_RUN, DATASETS, baseline=False, **evaluate_kwargs)
    values = {"batching.strategy": "hybrid"}
    (run / "run_spec.json").write_text(json.dumps({"name": TRAINED_RUN, "values": values}, indent=2), encoding="utf-8")
    return root


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with `n` torch CPU threads, restoring the previous number afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------- chromium


def chromium_path() -> str | None:
    """The system Chromium, or None when it is not installed."""
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")


def require_chromium() -> str:
    """The Chromium path, with Playwright importable; else skip, or fail where HBNB_REQUIRE_BROWSER=1 (CI)."""
    path = chromium_path()
    if importlib.util.find_spec("playwright") is None:
        problem = "the Python package playwright is not installed (pip install playwright)"
    elif path is None:
        problem = f"no Chromium at {CHROMIUM} or on PATH (apt-get install -y chromium)"
    else:
        return path
    if os.environ.get("HBNB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"HBNB_REQUIRE_BROWSER=1 but {problem}")
    pytest.skip(problem)


def launch_chromium(playwright: Any, executable: str | None = None) -> Any:
    """A headless system Chromium under Playwright (`playwright` is the sync_playwright() context)."""
    return playwright.chromium.launch(executable_path=executable or CHROMIUM, args=CHROMIUM_ARGS)


# ----------------------------------------------------------------------------- jupyter lab


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# JupyterLab user settings for tests: no news or update toasts over the page (they would ask the
# internet, and cover what a screenshot should show)
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    }
}


@dataclass
class JupyterLab:
    """A JupyterLab server over `root_dir` on a free port with a random token; use as a context manager.

    Its user settings, workspaces and log live in `state_dir` (default: beside `root_dir`), so
    a test neither reads nor changes the user's JupyterLab state.
    """

    root_dir: Path
    state_dir: Path | None = None
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        assert self.state_dir is not None, "start() sets state_dir"
        return self.state_dir / "jupyterlab.log"

    def url(self, path: str = "lab") -> str:
        """A page of the server, authenticated by the token."""
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def start(self, timeout: float = 90) -> JupyterLab:
        """Start the server and wait until its API answers."""
        self.state_dir = self.state_dir or self.root_dir.parent / f"jupyterlab-{self.port}"
        settings = self.state_dir / "settings"
        for name, values in LAB_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(values), encoding="utf-8")
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            f"--port={self.port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--allow-root",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={self.state_dir / 'workspaces'}",
        ]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=self.root_dir)
        self._wait_until_up(timeout)
        return self

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.process.returncode}; log:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(
            f"jupyter lab did not answer on port {self.port} within {timeout} s; log:\n{self.log_text()}"
        )

    def api(self, path: str, body: dict | None = None) -> Any:
        """Call the server's REST API (GET, or POST with a JSON body); the decoded JSON answer."""
        request = urllib.request.Request(
            f"{self.base_url}/api/{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            method="GET" if body is None else "POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def start_kernel(self, notebook: str) -> str:
        """Start the notebook's kernel session before a page opens it; returns the kernel id.

        A page that starts the kernel itself can race its own websocket against the kernel's
        start (the server answers 500, JupyterLab starts a second kernel, a Run All is lost);
        the server answers this request once the kernel runs, and a page opening a notebook
        whose session exists just connects to it.
        """
        session = self.api(
            "sessions", {"path": notebook, "name": notebook, "type": "notebook", "kernel": {"name": "python3"}}
        )
        return str(session["kernel"]["id"])

    def log_text(self) -> str:
        """The end of the server's log (for failure messages)."""
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:] if self.log.is_file() else ""

    def stop(self) -> None:
        """Stop the server (and its kernels): terminate, then kill if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> JupyterLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_all_cells(page: Any, lab: JupyterLab, notebook: str, timeout_ms: float = 90_000) -> None:
    """Open `notebook` (relative to the server's root) in JupyterLab and run every cell from the Run menu.

    The kernel is started first (see `JupyterLab.start_kernel`), and the page waits until it
    shows the kernel idle: a Run All issued while the kernel still connects is dropped.
    """
    lab.start_kernel(notebook)
    page.goto(lab.url(f"lab/tree/{notebook}"))
    accept_kernel_dialog(page)
    wait_until_idle(page, timeout_ms)
    page.locator("#jp-MainMenu").get_by_text("Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()


def accept_kernel_dialog(page: Any, timeout_ms: float = 10_000) -> None:
    """Take the preferred kernel if JupyterLab asks which one to start (it sometimes does on a
    loaded machine even though the session exists); the dialog would block Run All."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True).click(timeout=timeout_ms)
    except PlaywrightTimeout:
        pass


def wait_until_idle(page: Any, timeout_ms: float = 90_000) -> None:
    """Wait until the open notebook's kernel shows idle (it shows busy while it handles a widget's change).

    After a widget change, call it once the page shows the kernel has begun (a first view
    redrawn, say): right after the change, the indicator may not have turned busy yet.
    """
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=timeout_ms)
