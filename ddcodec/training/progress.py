"""Progress reports of an encode: a bar on a terminal, one plain line per stage on a log (redirected stderr).

A redrawn bar written to a file is tens of kilobytes of carriage returns per image; a log wants one line per stage
and image saying what was done, how well and how long it took. One `Progress` spans a whole encode, so the bar's
ETA is for everything left, not only for the current stage, and the bar counts the images (or a photo's tiles)
encoded so far.

The ETA is the time per pixel of the batches encoded so far times the pixels left, less the time the current batch
has run: a batch's stages differ in cost per iteration (the warm-up fits candidates, partly at a coarse size) and its
coding after the last iteration takes time too, so whole batches are the unit; before the first batch is done it is
extrapolated from the iterations done.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Callable, Sequence, TextIO

from tqdm import tqdm

STAGE_NAMES = {"warm-up": "warm-up (choosing the seed)", "fit": "fitting", "qat": "quantization-aware fine-tuning"}


def psnr_of(mse: float) -> float:
    """PSNR in dB of an MSE of pixels in [0, 1]."""
    return -10 * math.log10(max(mse, 1e-12))


class Progress:
    """Reports the stages of an encode of `total` iterations in all, to `stream` (stderr by default). `batches` are
    the (images or tiles, pixels) of each batch in the order they are encoded, `unit` what they are ('images' or
    'tiles'); `clock` gives seconds (time.perf_counter; a test's fake clock)."""

    def __init__(self, total: int, stream: TextIO | None = None, batches: Sequence[tuple[int, int]] = (),
                 unit: str = "images", clock: Callable[[], float] = time.perf_counter) -> None:
        self.total, self.done = total, 0
        self.batches, self.finished, self.unit = list(batches), 0, unit
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty()
        self.clock = clock
        self.start = self.batch_start = clock()

    def stage(self, name: str, iters: int, label: str = "") -> Stage:
        """Begin a stage of `iters` iterations (name: 'warm-up', 'fit', 'qat' or any other) for the images `label`."""
        return Stage(self, name, iters, label)

    def batch_done(self) -> None:
        """The current batch is encoded (fitted and coded); the next one begins."""
        self.finished += 1
        self.batch_start = self.clock()

    def count(self) -> str:
        """'done/all' of the images (or tiles) of `batches`."""
        counts = [n for n, _ in self.batches]
        return f"{sum(counts[: self.finished])}/{sum(counts)}"

    def eta(self) -> float:
        """Seconds left for the whole encode (the module's docstring says how); NaN before anything is done."""
        now = self.clock()
        if 0 < self.finished <= len(self.batches):
            pixels = [p for _, p in self.batches]
            per_pixel = (self.batch_start - self.start) / sum(pixels[: self.finished])
            return max(per_pixel * sum(pixels[self.finished :]) - (now - self.batch_start), 0.0)
        return (now - self.start) / self.done * max(self.total - self.done, 0) if self.done else math.nan


class Stage:
    """One stage of fitting: `update` as iterations complete, `close` with the final error."""

    def __init__(self, progress: Progress, name: str, iters: int, label: str) -> None:
        self.progress, self.name, self.iters, self.label, self.it = progress, name, iters, label, 0
        self.start = progress.clock()
        self.bar = None
        if progress.terminal:
            desc = " ".join(filter(None, [label, STAGE_NAMES.get(name, name)]))
            self.bar = tqdm(total=iters, desc=desc, leave=False, dynamic_ncols=True, file=progress.stream)

    def update(self, it: int, mse: float | None = None) -> None:
        """`it` iterations of this stage are done; `mse` (the worst image's), when known, is shown on the bar."""
        self.progress.done += it - self.it
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
        self.progress.stream.write(f"{head}{self.name}: {self.iters} iterations, PSNR {psnr_of(mse):.2f} dB, "
                                   f"{elapsed:.1f} s\n")
        self.progress.stream.flush()


def _clock(seconds: float) -> str:
    """h:mm:ss (m:ss under an hour) of a duration, '?' when unknown."""
    if math.isnan(seconds):
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
