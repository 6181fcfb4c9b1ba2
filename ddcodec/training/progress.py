"""Progress reports of an encode: a bar on a terminal, one plain line per stage on a log (redirected stderr).

A redrawn bar written to a file is tens of kilobytes of carriage returns per image; a log wants one line per stage
and image saying what was done, how well and how long it took. One `Progress` spans a whole encode, so the bar's
ETA is for everything left, not only for the current stage.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

from tqdm import tqdm

STAGE_NAMES = {"warm-up": "warm-up (choosing the seed)", "fit": "fitting", "qat": "quantization-aware fine-tuning"}


def psnr_of(mse: float) -> float:
    """PSNR in dB of an MSE of pixels in [0, 1]."""
    return -10 * math.log10(max(mse, 1e-12))


class Progress:
    """Reports the stages of an encode of `total` iterations in all, to `stream` (stderr by default)."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total, self.done = total, 0
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty()
        self.start = time.perf_counter()

    def stage(self, name: str, iters: int, label: str = "") -> Stage:
        """Begin a stage of `iters` iterations (name: 'warm-up', 'fit', 'qat' or any other) for the images `label`."""
        return Stage(self, name, iters, label)

    def eta(self) -> float:
        """Seconds left for the whole encode, from the mean time per iteration so far."""
        elapsed = time.perf_counter() - self.start
        return elapsed / self.done * (self.total - self.done) if self.done else math.nan


class Stage:
    """One stage of fitting: `update` as iterations complete, `close` with the final error."""

    def __init__(self, progress: Progress, name: str, iters: int, label: str) -> None:
        self.progress, self.name, self.iters, self.label, self.it = progress, name, iters, label, 0
        self.start = time.perf_counter()
        self.bar = None
        if progress.terminal:
            desc = " ".join(filter(None, [label, STAGE_NAMES.get(name, name)]))
            self.bar = tqdm(total=iters, desc=desc, leave=False, dynamic_ncols=True, file=progress.stream)

    def update(self, it: int, mse: float | None = None) -> None:
        """`it` iterations of this stage are done; `mse` (the worst image's), when known, is shown on the bar."""
        self.progress.done += it - self.it
        if self.bar is not None:
            self.bar.update(it - self.it)
            postfix = {"overall ETA": _clock(self.progress.eta())}
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
        elapsed = time.perf_counter() - self.start
        head = f"{self.label}: " if self.label else ""
        self.progress.stream.write(f"{head}{self.name}: {self.iters} iterations, PSNR {psnr_of(mse):.2f} dB, "
                                   f"{elapsed:.1f} s\n")
        self.progress.stream.flush()


def _clock(seconds: float) -> str:
    """m:ss of a duration, '?' when unknown."""
    return "?" if math.isnan(seconds) else f"{int(seconds) // 60}:{int(seconds) % 60:02d}"
