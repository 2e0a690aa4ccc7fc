"""Progress bars: drawn where someone watches (a terminal, a notebook, HBNB_PROGRESS=1), never in a
log or a saved notebook, where `hbnb run` says one line per stage. The sweep tests run the real
scheduler on the stand-in notebooks of test_executors.py (they write a stage's outputs, nothing else)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import struct
import sys
import termios
from pathlib import Path

import nbformat
import pytest
from conftest import write_experiment
from test_executors import _stand_ins

from hbnb import cli, models
from hbnb.cache import cache_root
from hbnb.errors import ParamsError
from hbnb.evaluation.encoding import encode
from hbnb.experiment import pipeline
from hbnb.progress import ENV, bar, interactive

BAR = re.compile(r"\d+%\|")  # tqdm's "40%|" in front of the bar itself


@pytest.fixture
def no_embeddings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache that shares the built data and models but holds no embeddings, so encoding really runs."""
    shared, cache = cache_root(), tmp_path / "cache"
    cache.mkdir()
    for entry in shared.iterdir() if shared.is_dir() else []:
        if entry.name != "embeddings":
            (cache / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    monkeypatch.setenv("HBNB_CACHE", str(cache))
    return cache / "embeddings"


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_interactive_follows_the_terminal_and_the_variable(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert not interactive()  # stderr captured: not a terminal
    monkeypatch.setenv(ENV, "1")
    assert interactive()
    monkeypatch.delenv(ENV)
    leader, follower = os.openpty()
    os.set_blocking(leader, False)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 wide
    with os.fdopen(follower, "w") as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        assert interactive()
        assert list(bar(range(5), desc="counting")) == [0, 1, 2, 3, 4]
        terminal.flush()
        drawn = _read_all(leader)
        assert "counting: 100%|" in drawn and "5/5" in drawn
        monkeypatch.setenv(ENV, "0")
        assert not interactive()
        monkeypatch.setenv(ENV, "yes")
        with pytest.raises(ParamsError, match=r"HBNB_PROGRESS='yes': set it to 1 \(progress bars on\), 0 \(off\)"):
            interactive()
    os.close(leader)


def test_evaluate_in_a_log_draws_no_bar(capfd, monkeypatch, no_embeddings: Path, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV, raising=False)
    args = ["--data", "xquad-r", "--langs", "en", "de", "--max-items", "10", "--candidates", "sentence"]
    assert cli.main(["evaluate", "--model", "use-m", *args, "--out", str(tmp_path / "out")]) == 0
    out, err = capfd.readouterr()
    assert len(list(no_embeddings.glob("*.npy"))) == 2  # queries and candidates were encoded here
    assert "multilingual_map" in out and (tmp_path / "out" / "metrics.parquet").is_file()
    assert "\r" not in err and not BAR.search(err), err


def test_encode_draws_a_bar_when_asked(capfd, monkeypatch) -> None:
    model = models.load("use-m")
    texts = [f"question number {i} about a river" for i in range(24)]
    monkeypatch.setenv(ENV, "1")
    shown = encode(model, texts, "query", batch_size=8, cache=False)
    err = capfd.readouterr().err
    assert "Batches: 100%|" in err and "3/3" in err
    monkeypatch.setenv(ENV, "0")
    quiet = encode(model, texts, "query", batch_size=8, cache=False)
    assert capfd.readouterr().err == ""
    assert (shown == quiet).all()  # the bar changes nothing else


def _kernel_reports_its_progress_setting(notebooks: Path, trace: Path) -> None:
    """Make the stand-in training notebook record what its kernel decides about bars."""
    path = notebooks / "02_train.ipynb"
    train = nbformat.read(path, as_version=4)
    train.cells[1].source += (
        "\nfrom hbnb import progress\n"
        f"with open({str(trace)!r}, 'a') as f:\n"
        "    seen = [os.environ.get('HBNB_PROGRESS'), progress.in_jupyter(), progress.interactive()]\n"
        "    from tqdm import tqdm\n"
        "    seen.append(tqdm(range(3)).disable)  # a library's text bar that leaves tqdm's default\n"
        "    f.write(json.dumps(seen) + '\\n')\n"
    )
    nbformat.write(train, path)


def test_a_sweep_says_one_line_per_stage_in_a_log_and_draws_a_bar_in_a_terminal(
    capfd, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    notebooks = _stand_ins(tmp_path / "notebooks")
    kernels = tmp_path / "kernels.jsonl"
    _kernel_reports_its_progress_setting(notebooks, kernels)
    monkeypatch.setenv("HBNB_NOTEBOOKS", str(notebooks))
    monkeypatch.setenv("HBNB_TEST_TRACE", str(tmp_path / "trace.jsonl"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv(ENV, raising=False)
    reports = tmp_path / "reports"

    # one run in a log: a line as each stage finishes, nothing else, no bar
    path = write_experiment(tmp_path, "bars", baseline=False, sweep={"batching.strategy": ["x-x"]})
    lines: list[str] = []
    pipeline.run(path, reports, echo=lines.append)
    keys = ["data", "train/strategy-x-x", "evaluate/strategy-x-x", "report"]
    assert [line.split(" (")[0].split(" in ")[0] for line in lines[:-1]] == [
        f"[{i}/4] {key}: finished" for i, key in enumerate(keys, 1)
    ]
    assert lines[-1] == f"experiment bars: {reports.resolve() / 'bars' / 'index.html'}"
    err = capfd.readouterr().err
    assert "\r" not in err and not BAR.search(err), err

    # a second run added, in a terminal: the bar names it and counts the three stages that run
    path = write_experiment(tmp_path, "bars", baseline=False, sweep={"batching.strategy": ["x-x", "hybrid"]})
    monkeypatch.setenv(ENV, "1")
    lines.clear()
    pipeline.run(path, reports, echo=lines.append)
    assert [line.split(": ")[1].split(" in ")[0] for line in lines[:-1]] == [
        "done earlier, skipped",  # data
        "done earlier, skipped",  # train/strategy-x-x
        "done earlier, skipped",  # evaluate/strategy-x-x
        "finished",  # train/strategy-hybrid
        "finished",  # evaluate/strategy-hybrid
        "finished",  # report
    ]
    err = capfd.readouterr().err
    assert "run 2/2: train/strategy-hybrid:" in err and "run 2/2: evaluate/strategy-hybrid:" in err
    assert "report:" in err and "run 1/2" not in err  # only what runs is named
    final = err.split("\r")[-1]
    assert re.search(r"100%\|.*\| 3/3 \[\d\d:\d\d<00:00", final), final  # skipped stages left the total

    # both times the kernels drew nothing: a Jupyter kernel, told to stay quiet
    assert [json.loads(line) for line in kernels.read_text().splitlines()] == [["0", True, False, True]] * 2
