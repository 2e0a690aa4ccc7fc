"""Progress bars (tqdm) on the long steps: encoding, training, the stages of `hbnb run`.

A bar is drawn where someone watches: stderr is a terminal, or the code runs in a Jupyter
kernel (`tqdm.auto` draws the notebook widget there). A CI log or a redirected stderr gets no
bar, so it is not filled with carriage returns: a sweep says one line per stage there instead.
`HBNB_PROGRESS=0` turns every bar off, `HBNB_PROGRESS=1` turns them on (in a log, tqdm's
text bar). The stage notebooks `hbnb run` executes (papermill kernels) always run with
`HBNB_PROGRESS=0` and `TQDM_DISABLE=1` (`QUIET`; the second turns off the text bars of
libraries that use plain `tqdm.tqdm` without saying `disable`), so no bar lands in a saved
notebook's output cells.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from tqdm.auto import tqdm

from hbnb.errors import ParamsError

ENV = "HBNB_PROGRESS"
QUIET = {ENV: "0", "TQDM_DISABLE": "1"}  # the environment of a process whose output is kept (papermill kernels)


def interactive() -> bool:
    """Whether to draw progress bars: HBNB_PROGRESS if set (1 or 0), else a terminal on stderr or a Jupyter kernel."""
    forced = os.environ.get(ENV, "").strip()
    if forced:
        if forced not in ("0", "1"):
            raise ParamsError(f"{ENV}={forced!r}: set it to 1 (progress bars on), 0 (off), or unset it (automatic)")
        return forced == "1"
    return _is_terminal(sys.stderr) or in_jupyter()


def in_jupyter() -> bool:
    """Whether this process is a Jupyter kernel (JupyterLab, VS Code, papermill): tqdm.auto's own test."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def quiet_kernels(manager: type) -> type:
    """`manager` (a jupyter_client kernel manager class) with `QUIET` in its kernels' environment."""

    class QuietKernelManager(manager):  # type: ignore[misc, valid-type]
        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            kw["env"] = {**kw.get("env", os.environ), **QUIET}  # what the provisioner launches the kernel with
            return await super()._async_pre_start_kernel(**kw)

    return QuietKernelManager


def bar(
    iterable: Iterable | None = None,
    total: float | None = None,
    desc: str | None = None,
    unit: str = "it",
    **kwargs: Any,
) -> tqdm:
    """A `tqdm.auto` bar on stderr (the widget in a notebook), disabled where `interactive()` is false.

    `kwargs` go to tqdm (e.g. `leave`, `position`). A disabled bar iterates and draws nothing.
    """
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not interactive(), dynamic_ncols=True, **kwargs)


class Steps:
    """The news of a few long steps (a sweep's stages): one line each, and a bar where someone watches.

    Lines go to `echo` either way (a CI log reads them: one per step). With a bar, they are
    printed above it, and the bar names the steps running (`start`), counts the finished ones
    and shows tqdm's elapsed<remaining, redrawn every `tick` seconds while a step runs. Its
    total is the steps to run: a step `skip`ped leaves it, so the estimate counts real work.
    """

    def __init__(self, total: int, echo: Callable[[str], None], unit: str = "stage", tick: float = 1.0) -> None:
        self._echo = echo
        self._running: dict[str, str] = {}  # key -> description, in the order they started
        self._bar = bar(total=total, unit=unit, leave=True) if interactive() else None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self._bar is not None and tick > 0:
            self._ticker = threading.Thread(target=self._redraw, args=(tick,), name="hbnb-progress", daemon=True)
            self._ticker.start()

    @property
    def description(self) -> str:
        """What the bar says is running: the latest step started, and how many more run beside it."""
        if not self._running:
            return ""
        latest = list(self._running.values())[-1]
        more = len(self._running) - 1
        return f"{latest} (+{more} more running)" if more else latest

    def say(self, line: str) -> None:
        """A line for the log (above the bar, if there is one)."""
        if self._bar is None:
            self._echo(line)
            return
        with tqdm.external_write_mode(file=sys.stdout):
            self._echo(line)

    def start(self, key: str, description: str) -> None:
        """Step `key` started; the bar names it with `description` (no line: a step's line says how it ended)."""
        self._running[key] = description
        self._show()

    def finish(self, key: str, line: str) -> None:
        """Step `key` finished: its line, and one more step done on the bar."""
        self._running.pop(key, None)
        self.say(line)
        if self._bar is not None:
            self._bar.update(1)
            self._show()

    def skip(self, line: str) -> None:
        """A step with nothing to do: its line, and one step less to run."""
        self.say(line)
        if self._bar is not None and self._bar.total:
            self._bar.total -= 1
            self._bar.refresh()

    def stop(self, key: str) -> None:
        """Step `key` ended without finishing (its failure is reported elsewhere)."""
        self._running.pop(key, None)
        self._show()

    def close(self) -> None:
        """Stop redrawing and leave the bar as it stands."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _show(self) -> None:
        if self._bar is not None:
            self._bar.set_description_str(self.description, refresh=True)

    def _redraw(self, tick: float) -> None:
        """Redraw the bar while a step runs, so its elapsed time moves (tqdm redraws only on updates)."""
        while not self._stop.wait(tick):
            if self._bar is not None:
                self._bar.refresh()
