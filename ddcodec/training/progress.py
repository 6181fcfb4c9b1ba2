"""Progress reports of an encode: a bar on a terminal, one plain line per stage on a log (redirected stderr).

A redrawn bar written to a file is tens of kilobytes of carriage returns per image; a log wants one line per stage
and image saying what was done, how well and how long it took. One `Progress` spans a whole encode, so the bar's
ETA (and each logged line's) is for everything left, not only for the current stage. Its units are work, not
iterations: the caller weighs each stage's iterations, and the steps between them, by what they cost (the
encoder's cost model: a warm-up iteration, a half-size one and a full-size one differ, and the steps after the
fit are no iterations at all), and the ETA scales the work left by the seconds per unit measured so far. The bar
also counts the images (or a photo's tiles) encoded so far.

A photo's tiles fitted in worker processes (encoder/workers.py) report through a `Relayed` progress: each sends its
work and its log lines to the parent's `Progress`, which draws one bar (or writes the lines) for the whole encode.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable, Mapping, Sequence, TextIO

from tqdm import tqdm

STAGE_NAMES = {"warm-up": "warm-up (choosing the seed)", "fit": "fitting", "qat": "quantization-aware fine-tuning"}


def psnr_of(mse: float) -> float:
    """PSNR in dB of an MSE of pixels in [0, 1]."""
    return -10 * math.log10(max(mse, 1e-12))


class Progress:
    """Reports the stages of an encode of `total` units of work in all (iterations, unless the caller weighs them),
    to `stream` (stderr by default); `clock` gives seconds. `costs`: work per iteration by stage name (1 where
    absent), which the caller may set before each batch of stages. `batches`: how many images or tiles each batch
    encodes, in order, and `unit` what they are ('images' or 'tiles'), for the count on the bar."""

    def __init__(self, total: float, stream: TextIO | None = None, clock: Callable[[], float] = time.perf_counter,
                 batches: Sequence[int] = (), unit: str = "images") -> None:
        self.total, self.done = total, 0.0
        self.costs: Mapping[str, float] = {}
        self.batches, self.finished, self.unit = list(batches), 0, unit
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty()
        self.clock = clock
        self.start = clock()
        self.bar: tqdm | None = None

    def stage(self, name: str, iters: int, label: str = "") -> Stage:
        """Begin a stage of `iters` iterations (name: 'warm-up', 'fit', 'qat' or any other) for the images `label`."""
        return Stage(self, name, iters, label, self.costs.get(name, 1.0))

    def advance(self, work: float) -> None:
        """`work` units done (by a stage's iterations, or outside any stage: the steps between and after the fit's
        stages)."""
        self.done += work

    def receive(self, kind: str, value: float | str) -> None:
        """A worker's message (Relayed): `work` units done, drawn on one bar for the whole encode on a terminal, or
        a log `line`, written to a log (a terminal shows the bar only)."""
        if kind == "work":
            self.advance(float(value))
            self._draw()
        elif not self.terminal:
            self.stream.write(str(value))
            self.stream.flush()

    def _draw(self) -> None:
        """The whole encode's bar (for work relayed from workers), made on first use."""
        if not self.terminal:
            return
        if self.bar is None:
            self.bar = tqdm(total=self.total, desc="encoding", leave=False, dynamic_ncols=True, file=self.stream,
                            bar_format="{l_bar}{bar}| {postfix}")
        self.bar.n = min(self.done, self.total)
        self.bar.set_postfix({**({self.unit: self.count()} if self.batches else {}), "ETA": _clock(self.eta())})

    def close(self) -> None:
        """Remove the whole encode's bar, if one was drawn."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def batch_done(self) -> None:
        """The current batch is encoded (fitted and coded); the next one begins."""
        self.finished += 1

    def count(self) -> str:
        """'done/all' of the images (or tiles) of `batches`."""
        return f"{sum(self.batches[: self.finished])}/{sum(self.batches)}"

    def eta(self) -> float:
        """Seconds left for the whole encode: the work left at the seconds per unit of work so far."""
        elapsed = self.clock() - self.start
        return elapsed / self.done * max(self.total - self.done, 0.0) if self.done else math.nan


class Stage:
    """One stage of fitting, of `cost` units of work per iteration: `update` as iterations complete, `close` with the
    final error."""

    def __init__(self, progress: Progress, name: str, iters: int, label: str, cost: float = 1.0) -> None:
        self.progress, self.name, self.iters, self.label, self.it = progress, name, iters, label, 0
        self.cost = cost
        self.start = progress.clock()
        self.bar = None
        if progress.terminal:
            desc = " ".join(filter(None, [label, STAGE_NAMES.get(name, name)]))
            self.bar = tqdm(total=iters, desc=desc, leave=False, dynamic_ncols=True, file=progress.stream)

    def update(self, it: int, mse: float | None = None) -> None:
        """`it` iterations of this stage are done; `mse` (the worst image's), when known, is shown on the bar."""
        self.progress.advance((it - self.it) * self.cost)
        if self.bar is not None:
            self.bar.update(it - self.it)
            postfix = {self.progress.unit: self.progress.count()} if self.progress.batches else {}
            postfix["overall ETA"] = _clock(self.progress.eta())
            if mse is not None:
                postfix["PSNR"] = f"{psnr_of(mse):.2f} dB"
            self.bar.set_postfix(postfix)
        self.it = it

    def close(self, mse: float) -> None:
        """End the stage; on a log, write its one line: stage, iterations, the worst image's PSNR, elapsed time."""
        self.update(self.iters)
        if self.bar is not None:
            self.bar.close()
            return
        elapsed = self.progress.clock() - self.start
        head = f"{self.label}: " if self.label else ""
        eta = self.progress.eta()
        left = "" if math.isnan(eta) else f", about {_clock(eta)} left"
        self.progress.stream.write(f"{head}{self.name}: {self.iters} iterations, PSNR {psnr_of(mse):.2f} dB, "
                                   f"{elapsed:.1f} s{left}\n")
        self.progress.stream.flush()


class _Lines:
    """A text stream that sends each write to a queue as a log line message."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def write(self, text: str) -> None:
        self.queue.put(("line", text))

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class Relayed(Progress):
    """A worker process's progress: its work and its log lines go to `queue` as ('work', units) and ('line', text)
    messages for the parent's Progress.receive; the ETA is the parent's (the worker knows only its own tiles)."""

    def __init__(self, queue: Any) -> None:
        super().__init__(0.0, _Lines(queue))
        self.queue = queue

    def advance(self, work: float) -> None:
        self.queue.put(("work", work))

    def eta(self) -> float:
        return math.nan


def _clock(seconds: float) -> str:
    """h:mm:ss (m:ss under an hour) of a duration, '?' when unknown."""
    if math.isnan(seconds):
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
