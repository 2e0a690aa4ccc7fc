"""Helpers for tests that need real results or a real browser: shared by the explorer's tests and
any other browser test (an HTML report, say).

- `build_tiny_experiment`: a genuine experiment folder (an untuned baseline and a 10-step
  hybrid run of use-m, both evaluated on MLQA-R en/de/es), laid out as `hbnb run` lays it out,
  so readers of `reports/` are tested on real evaluations, not hand-made tables.
- `chromium_path` / `launch_chromium`: the system Chromium (Debian's `chromium` package)
  driven by Playwright; `playwright install` cannot download browsers here, so tests
  never depend on it.
- `JupyterLab`: a real JupyterLab server on a free port, started and stopped around a test.
"""

from __future__ import annotations

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
BASELINE_RUN = "baseline-use-m"
TRAINED_RUN = "strategy-hybrid"


# ----------------------------------------------------------------------------- real results


def build_tiny_experiment(reports: Path, experiment: str = EXPERIMENT) -> Path:
    """Evaluate untuned use-m and a 10-step hybrid run of it on MLQA-R (en, de, es) under `reports/<experiment>/`.

    About a minute on 2 CPU cores (embeddings are cached by hbnb, so reruns are quicker).
    Returns the experiment folder.
    """
    from hbnb.params import BatchingParams, TrainParams
    from hbnb.scoring import evaluate_to
    from hbnb.training import train

    root = reports / experiment
    evaluate_kwargs: dict[str, Any] = {
        "langs": {"mlqa-r": LANGS}, "candidates": "sentence", "n_resamples": 200, "run_depth": 10,
    }
    evaluate_to(root / BASELINE_RUN / "eval", "use-m", BASELINE_RUN, ["mlqa-r"], baseline=True, **evaluate_kwargs)
    run = root / TRAINED_RUN
    model = train(
        TrainParams(
            model="use-m", data="xquad", output_dir=run / "train", max_steps=10, learning_rate=1e-4, save_steps=10,
            freeze_word_embeddings=True, batching=BatchingParams(strategy="hybrid", languages=LANGS, batch_size=16),
        )
    )
    evaluate_to(run / "eval", str(model), TRAINED_RUN, ["mlqa-r"], baseline=False, **evaluate_kwargs)
    values = {"batching.strategy": "hybrid"}
    (run / "run_spec.json").write_text(json.dumps({"name": TRAINED_RUN, "values": values}, indent=2), encoding="utf-8")
    return root


# ----------------------------------------------------------------------------- chromium


def chromium_path() -> str | None:
    """The system Chromium, or None when it is not installed."""
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")


def require_chromium() -> str:
    """The Chromium path; else skip, or fail where HBNB_REQUIRE_BROWSER=1 (CI must not skip silently)."""
    path = chromium_path()
    try:
        import playwright  # noqa: F401
    except ImportError:
        path = None
        reason = "the Python package playwright is not installed (pip install playwright)"
    else:
        reason = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    if path is None:
        if os.environ.get("HBNB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"HBNB_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return path


def launch_chromium(playwright: Any, executable: str | None = None) -> Any:
    """A headless system Chromium under Playwright (`playwright` is the sync_playwright() context)."""
    return playwright.chromium.launch(executable_path=executable or CHROMIUM, args=CHROMIUM_ARGS)


# ----------------------------------------------------------------------------- jupyter lab


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class JupyterLab:
    """A JupyterLab server over `root_dir`, on a free port with a random token; use as a context manager."""

    root_dir: Path
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    log: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "lab") -> str:
        """A page of the server, authenticated by the token."""
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def start(self, timeout: float = 90) -> JupyterLab:
        """Start the server and wait until its API answers (its log lands in `log`, for failures)."""
        self.log = self.log or self.root_dir.parent / f"jupyterlab-{self.port}.log"
        command = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
            f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={self.root_dir}", "--allow-root",
            "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
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
        raise RuntimeError(f"jupyter lab did not answer on port {self.port} within {timeout} s; log:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:] if self.log and self.log.is_file() else ""

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
