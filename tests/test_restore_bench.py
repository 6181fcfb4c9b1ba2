"""The restoration benchmark end to end on one tiny crop with two iterations per prior."""

import json
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("skimage")
pytest.importorskip("matplotlib")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not an installed package
from benchmarks import restore as bench  # noqa: E402


def test_tiny_run_writes_results_table_and_figure(tmp_path):
    threads = torch.get_num_threads()
    try:
        bench.main(["--crops", "1", "--size", "40", "--iters", "2", "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)  # the benchmark runs on one thread
    results = json.loads((tmp_path / "results.json").read_text())
    for task in bench.TASKS:
        methods = results["means"][task]
        assert {"dd", "dip"} <= set(methods) and len(methods) >= 3
        assert all(0 < m["psnr"] < 100 and 0 < m["ssim"] <= 1 for m in methods.values())
    assert "| noise25 | wavelet |" in (tmp_path / "table.md").read_text()
    assert (tmp_path / "crops.png").stat().st_size > 0
