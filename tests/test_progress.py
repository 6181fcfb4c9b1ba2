import io

import numpy as np
from PIL import Image

from ddcodec.encoder.encode import encode
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
