"""The trainer callbacks of an hbnb training run: its progress (a bar, or lines in a log), a stop when it diverges."""

from __future__ import annotations

import math
import time
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from hbnb.errors import NonFiniteError
from hbnb.training.distributed import process_rank


class StopWhenNonFinite(TrainerCallback):
    """Stop with one error when a step's loss or gradient norm is NaN or infinite.

    The trainer logs every step before it saves, so raising here keeps the step's weights (already
    broken when the gradient is) out of any checkpoint; the newest checkpoint stays the last good one.
    """

    def __init__(self, out: Path, learning_rate: float) -> None:
        self.out = out
        self.learning_rate = learning_rate

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102 - trainer hook
        bad = {k: logs[k] for k in ("loss", "grad_norm") if logs and isinstance(logs.get(k), float)}
        bad = {k: v for k, v in bad.items() if not math.isfinite(v)}
        if not bad:
            return
        from hbnb.training.trainer import last_complete_checkpoint

        good = last_complete_checkpoint(self.out)
        kept = f"the last good checkpoint is {good}" if good else "no checkpoint was saved before it"
        what = ", ".join(f"{k} {v}" for k, v in bad.items())
        raise NonFiniteError(
            f"training diverged at step {state.global_step} ({what}); {kept}; lower training.learning_rate "
            f"(now {self.learning_rate:g}) and delete {self.out} to start over"
        )


class Progress(TrainerCallback):
    """One line about every twentieth of the run (the per-step losses go to loss.csv)."""

    def __init__(self, max_steps: int) -> None:
        self.every = max(1, max_steps // 20)
        self.start = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102 - trainer hook
        if process_rank() != 0 or not logs:
            return
        if "eval_loss" in logs:
            print(f"step {state.global_step}/{state.max_steps}: validation loss {logs['eval_loss']:.4f}", flush=True)
        elif "loss" in logs and (state.global_step % self.every == 0 or state.global_step == state.max_steps):
            elapsed = time.perf_counter() - self.start
            print(f"step {state.global_step}/{state.max_steps}: loss {logs['loss']:.4f} ({elapsed:.0f} s)", flush=True)


class TrainingBar(ProgressCallback):
    """A tqdm bar over the run's steps (`hbnb.progress.bar`: the widget in a notebook) with the latest loss
    beside it; validation losses are written above it. transformers' own bar would print every log (each step)."""

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102 - trainer hook
        from hbnb.progress import bar

        if state.is_world_process_zero:
            self.training_bar = bar(total=state.max_steps, desc="training", unit="step")
        self.current_step = 0

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102 - trainer hook
        if not state.is_world_process_zero or self.training_bar is None or not logs:
            return
        if "eval_loss" in logs:
            loss = logs["eval_loss"]
            self.training_bar.write(f"step {state.global_step}/{state.max_steps}: validation loss {loss:.4f}")
        elif "loss" in logs:
            self.training_bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)


def show_progress(trainer) -> None:
    """Give `trainer` hbnb's progress: a bar where someone watches (`hbnb.progress.interactive`: a terminal or a
    notebook), else a line about every twentieth of the run, so a log (CI, a batch job) stays short."""
    from transformers.trainer import DEFAULT_PROGRESS_CALLBACK  # ProgressCallback, or the notebook's

    from hbnb.progress import interactive

    own = (PrinterCallback, ProgressCallback, DEFAULT_PROGRESS_CALLBACK)  # a line, or a bar line, per logged step
    handler = trainer.callback_handler
    handler.callbacks = [c for c in handler.callbacks if not isinstance(c, own)]
    trainer.add_callback(TrainingBar() if interactive() else Progress(trainer.args.max_steps))
