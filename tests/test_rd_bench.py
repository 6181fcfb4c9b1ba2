"""The rate-distortion benchmark: smoke preset end to end, resuming from the cache, BD-rate and MS-SSIM helpers."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bjontegaard")
pytest.importorskip("pytorch_msssim")
pytest.importorskip("matplotlib")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not an installed package
from benchmarks import rd  # noqa: E402

CODECS = ("ddcodec", "jpeg", "webp", "jpeg2000", "avif")
KEYS = ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Output folder of one smoke run."""
    out = tmp_path_factory.mktemp("rd")
    assert rd.main(["--preset", "smoke", "--out", str(out)]) == 0
    return out


def test_smoke_writes_compressai_schema(smoke):
    preset = rd.PRESETS["smoke"]
    for codec in CODECS:
        doc = json.loads((smoke / f"{codec}.json").read_text())
        assert doc["name"] == codec and "smoke" in doc["description"] and "machine" in doc["description"]
        assert set(doc["results"]) == set(KEYS)
        n = len(preset.rates) if codec == "ddcodec" else len(preset.settings[codec])
        assert all(len(doc["results"][k]) == n for k in KEYS)
    assert (smoke / "rd.png").stat().st_size > 0
    assert "| COIN | published, full Kodak |" in (smoke / "bdrate.md").read_text()


def test_smoke_ddcodec_bpp_is_file_bytes(smoke):
    records = json.loads((smoke / "per-image.json").read_text())["ddcodec"]
    assert len(records) == 2 * len(rd.PRESETS["smoke"].rates)
    for r in records:
        assert r["bpp"] == 8 * r["bytes"] / (r["height"] * r["width"])
        assert r["bpp"] <= r["setting"]  # --bpp is a hard cap
        assert r["params"] > 0 and r["iters"] == rd.PRESETS["smoke"].iters and r["ms_ssim"] is None


def test_rerun_resumes_from_cache_and_compares_an_earlier_run(smoke, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("re-encoded a cached point")

    monkeypatch.setattr(rd, "run_ddcodec", fail)
    monkeypatch.setattr(rd, "run_pillow", fail)
    earlier = smoke / "earlier.json"
    earlier.write_text((smoke / "ddcodec.json").read_text())
    assert rd.main(["--preset", "smoke", "--out", str(smoke), "--earlier", str(earlier)]) == 0
    assert "| ddcodec earlier (" in (smoke / "bdrate.md").read_text()


def test_bd_rate_of_shifted_curve():
    rate = np.array([0.1, 0.2, 0.4, 0.8, 1.6])
    dist = 30 + 4 * np.log2(rate)
    value, overlap = rd.bd_rate((rate, dist), (0.8 * rate, dist))
    assert value == pytest.approx(-20, abs=0.5)
    assert overlap == pytest.approx((dist[0], dist[-1]))
    assert rd.bd_rate((rate, dist), (rate, dist + 100)) == (None, None)  # no PSNR overlap


def test_ms_ssim_needs_161_pixels():
    img = np.random.default_rng(0).integers(0, 256, (161, 170, 3), dtype=np.uint8)
    assert rd.ms_ssim_rgb(img, img) == pytest.approx(1.0)
    assert rd.ms_ssim_rgb(img[:160], img[:160]) is None
