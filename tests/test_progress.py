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


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_eta_is_the_time_per_pixel_of_the_batches_done_times_the_pixels_left():
    clock = FakeClock()
    progress = Progress(300, Terminal(), batches=[(1, 100), (1, 100), (1, 50)], unit="tiles", clock=clock)
    stage = progress.stage("fit", 100)
    clock.now = 2.0
    stage.update(50)
    assert progress.eta() == pytest.approx(2.0 / 50 * 250)  # before a batch is done: from the iterations
    clock.now = 10.0
    stage.close(1e-3)
    progress.batch_done()
    assert progress.count() == "1/3" and progress.eta() == pytest.approx(0.1 * 150)
    clock.now = 12.0
    assert progress.eta() == pytest.approx(0.1 * 150 - 2.0)
    clock.now = 40.0
    assert progress.eta() == 0.0


def test_the_bar_counts_tiles_and_shows_hours():
    term, clock = Terminal(), FakeClock()
    progress = Progress(200, term, batches=[(1, 100), (1, 100)], unit="tiles", clock=clock)
    progress.stage("fit", 100).close(1e-3)
    clock.now = 4000.0
    progress.batch_done()
    progress.stage("fit", 100).update(1)
    assert "tiles=1/2" in term.getvalue() and "overall ETA=1:06:40" in term.getvalue()


def test_a_tiled_encode_logs_each_tile(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    monkeypatch.setattr(tiles, "TILE_SIDE", 16)
    pixels = np.asarray(Image.open(DATA / "kodim23_64.png").convert("RGB"))[:16, :24]
    encode(pixels, ratio=4, iters=10, tries=1, progress=True)
    heads = [line.split(": ")[0] for line in log.getvalue().splitlines()]
    assert heads == sorted(heads) and set(heads) == {"image 1/1, tile 1/2", "image 1/1, tile 2/2"}
