import io

import numpy as np
import pytest
from PIL import Image

from ddcodec.encoder.encode import encode
from ddcodec.format import tiles
from ddcodec.training.progress import Progress

from .conftest import DATA


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_encode_logs_one_line_per_stage_to_a_non_terminal(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    pixels = np.asarray(Image.open(DATA / "kodim23_64.png").convert("RGB"))[:16, :16]
    encode(pixels, ratio=4, iters=40, tries=2, progress=True)
    lines = log.getvalue().splitlines()
    assert [line.split(": ")[1] for line in lines] == ["warm-up", "fit", "qat"]
    assert all(line.startswith("image 1/1: ") and "iterations, PSNR" in line and " dB, " in line for line in lines)


def test_a_2000_iteration_encode_logs_at_most_2_kb():
    log = io.StringIO()
    progress = Progress(2000, log)
    for name, iters in [("warm-up", 1200), ("fit", 700), ("qat", 100)]:  # the stages fit() reports, as it does
        stage = progress.stage(name, iters, "image 1/1")
        for it in range(0, iters, 10):
            stage.update(it + 1, 1e-3)
        stage.close(1e-3)
    assert len(log.getvalue().splitlines()) == 3 and len(log.getvalue().encode()) <= 2048


def test_terminal_gets_a_bar_with_stage_names_and_overall_eta():
    term = Terminal()
    stage = Progress(100, term).stage("qat", 100)
    for it in range(1, 101, 10):
        stage.update(it, 1e-3)
    stage.close(1e-3)
    text = term.getvalue()
    assert "quantization-aware fine-tuning" in text and "overall ETA" in text and "PSNR=30.00 dB" in text


class Clock:
    """A fake clock: seconds move only when the test says."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_eta_weighs_each_stage_by_its_cost_per_iteration():
    clock = Clock()
    progress = Progress(10 * 1 + 10 * 3 + 5, io.StringIO(), clock)  # warm-up, fit, then 5 units after the fit
    progress.costs = {"warm-up": 1.0, "fit": 3.0}
    warm = progress.stage("warm-up", 10)
    for it in range(1, 11):
        clock.now += 0.5  # half a second per unit of work
        warm.update(it)
    assert progress.eta() == (30 + 5) * 0.5  # what is left, at the seconds per unit measured so far
    fit = progress.stage("fit", 10)
    clock.now += 1.5
    fit.update(1)
    assert progress.eta() == (27 + 5) * 0.5
    fit.close(1e-3)
    clock.now += 13.5
    progress.advance(5)
    assert progress.eta() == 0


def test_a_log_line_says_what_is_left():
    clock = Clock()
    log = io.StringIO()
    progress = Progress(20, log, clock)
    stage = progress.stage("fit", 10)
    clock.now += 50
    stage.close(1e-3)
    assert log.getvalue().endswith("50.0 s, about 0:50 left\n")


def test_an_encode_reports_the_work_it_announced(monkeypatch):
    made = []

    class Recorded(Progress):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr("ddcodec.encoder.encode.Progress", Recorded)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    pixels = np.asarray(Image.open(DATA / "kodim23_64.png").convert("RGB"))[:32, :32]
    encode(pixels, bpp=2.0, iters=40, tries=2, progress=True)
    (progress,) = made
    assert set(progress.costs) == {"warm-up", "fit, half size", "fit", "rate refit", "qat"}  # a refit only if over
    assert abs(progress.done - progress.total) <= 1e-9 * progress.total


def test_the_bar_counts_tiles_and_shows_hours():
    term, clock = Terminal(), Clock()
    progress = Progress(200, term, clock, batches=[1, 1], unit="tiles")
    progress.stage("fit", 100).close(1e-3)
    clock.now = 4000.0
    progress.batch_done()
    progress.stage("fit", 100).update(1)
    assert "tiles=1/2" in term.getvalue() and "overall ETA=1:05:20" in term.getvalue()  # 4000 s / 101 x 99


def test_a_tiled_encode_logs_each_tile(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    monkeypatch.setattr(tiles, "TILE_SIDE", 16)
    pixels = np.asarray(Image.open(DATA / "kodim23_64.png").convert("RGB"))[:16, :24]
    encode(pixels, ratio=4, iters=10, tries=1, progress=True)
    heads = [line.split(": ")[0] for line in log.getvalue().splitlines()]
    assert heads == sorted(heads) and set(heads) == {"image 1/1, tile 1/2", "image 1/1, tile 2/2"}


def test_a_workers_progress_reaches_the_parents_bar_and_log():
    import queue

    from ddcodec.training.progress import Relayed

    messages: queue.SimpleQueue = queue.SimpleQueue()
    worker = Relayed(messages)
    worker.costs = {"fit": 2.0}
    stage = worker.stage("fit", 10, "image 1/1, tile 2/4")
    stage.update(5)
    stage.close(1e-3)
    worker.advance(3)
    term, log, clock = Terminal(), io.StringIO(), Clock()
    on_term, on_log = Progress(40, term, clock, batches=[1] * 4, unit="tiles"), Progress(40, log, clock)
    clock.now = 10.0
    while not messages.empty():
        message = messages.get()
        on_term.receive(*message)
        on_log.receive(*message)
    assert on_term.done == on_log.done == 2.0 * 10 + 3
    assert "ETA=0:07" in term.getvalue()  # 10 s for 23 units, 17 left; the worker's log line is not on the bar
    assert "PSNR" not in term.getvalue()
    assert log.getvalue() == "image 1/1, tile 2/4: fit: 10 iterations, PSNR 30.00 dB, 0.0 s\n"  # no worker ETA
    on_term.close()
