"""The rate-distortion benchmark: smoke preset end to end, resuming from stored points (also after a kill), partial
curves, the history of earlier versions, BD-rate and MS-SSIM helpers."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bjontegaard")
pytest.importorskip("pytorch_msssim")
pytest.importorskip("matplotlib")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not an installed package
from benchmarks import history, points, rd, ttq  # noqa: E402
from ddcodec import classical  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CODECS = ("ddcodec", *classical.available())
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
    table = (smoke / "bdrate.md").read_text()
    assert all(f"| {c} | {classical.CODECS[c].label} | this run |" in table for c in CODECS[1:])
    assert "| COIN |" not in table  # published full-Kodak curves are compared on full Kodak only


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
    assert not json.loads((smoke / "ddcodec.json").read_text())["partial"]


def test_a_partial_run_reports_the_finished_images_alone(smoke, tmp_path, monkeypatch):
    out = tmp_path / "run"
    shutil.copytree(smoke, out)
    stored = sorted((out / "points" / "ddcodec").glob("*.json"))
    unfinished = json.loads(stored[-1].read_text())["image"]
    kept = stored[-1].read_text()
    stored[-1].unlink()
    monkeypatch.setattr(rd, "run_pillow", lambda *a: pytest.fail("re-encoded a cached point"))
    assert rd.main(["--preset", "smoke", "--out", str(out), "--codecs", "jpeg"]) == 0
    assert json.loads((out / "ddcodec.json").read_text())["partial"]
    finished = json.loads((out / rd.FINISHED / "per-image.json").read_text())
    assert {r["image"] for recs in finished.values() for r in recs} == {r["image"] for r in finished["ddcodec"]}
    assert unfinished not in {r["image"] for r in finished["ddcodec"]} and len(finished["ddcodec"]) == 2
    table = (out / rd.FINISHED / "bdrate.md").read_text()
    assert "| jpeg |" in table and "Partial run: these are the 1 of its 2 images that ddcodec has finished" in table
    stored[-1].write_text(kept)  # every image done: the subset report goes
    assert rd.main(["--preset", "smoke", "--out", str(out), "--codecs", "jpeg"]) == 0
    assert not (out / rd.FINISHED).exists()


def test_a_killed_run_resumes_without_recomputing_finished_points(tmp_path, monkeypatch):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "benchmarks.rd", "--preset", "smoke", "--codecs", "ddcodec", "--iters", "20",
               "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stored = out / "points" / "ddcodec"
    deadline = time.monotonic() + 300
    while not (out / "ddcodec.json").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p.name: p.read_text() for p in stored.glob("*.json")}
    assert 1 <= len(before) < 4, "the run must be killed midway"
    assert json.loads((out / "ddcodec.json").read_text())["partial"]  # the partial curve, written after each point

    computed = []
    real = rd.run_ddcodec

    def counting(rate, images, preset):
        computed.append(rate)
        return real(rate, images, preset)

    monkeypatch.setattr(rd, "run_ddcodec", counting)
    assert rd.main(command[3:]) == 0
    assert len(computed) == 4 - len(before)
    assert all((stored / name).read_text() == text for name, text in before.items())
    done = json.loads((out / "ddcodec.json").read_text())
    assert not done["partial"] and len(done["results"]["bpp"]) == 2


def test_a_complexity_preset_reaches_the_encoder_and_keys_its_points(tmp_path, monkeypatch):
    asked = []
    real = rd.ddcodec.encode_many

    def recording(*args, **kwargs):
        asked.append(kwargs["complexity"])
        return real(*args, **kwargs)

    monkeypatch.setattr(rd.ddcodec, "encode_many", recording)
    assert rd.main(["--preset", "smoke", "--codecs", "ddcodec", "--iters", "20", "--complexity", "low",
                    "--out", str(tmp_path)]) == 0
    stored = sorted((tmp_path / "points" / "ddcodec").glob("*.json"))
    assert asked and set(asked) == {"low"}
    assert stored and all(p.stem.endswith("_low") for p in stored)
    assert all(json.loads(p.read_text())["key"]["complexity"] == "low" for p in stored)


def test_ttq_levers_change_the_warm_up_and_the_fine_tuning():
    preset = ttq.encode_options(ttq.parse_lever("effort=3,warmup=5/5/2,finetune_latents=hard"))["preset"]
    assert (preset.warmup.candidates, preset.warmup.survivors) == (5, (5, 2))
    assert preset.iters == 2000 and all(p.latents == "hard" for p in preset.finetune)


def test_curves_and_bd_rate_use_complete_settings_only():
    records = [{"setting": s, "image": i, "bpp": s, "psnr": 20 + s, "ms_ssim": None, "encoding_time": 1.0,
                "decoding_time": 0.1} for s, i in [(0.3, "a"), (0.3, "b"), (0.6, "a")]]
    curve = points.aggregate(records, (0.3, 0.6), 2)
    assert curve["bpp"] == [0.3] and curve["psnr-rgb"] == [20.3]
    assert points.progress(records, (0.3, 0.6)) == {"0.3": 2, "0.6": 1}
    assert points.finished_images(records, (0.3, 0.6)) == ["a"]


def test_an_older_version_moves_to_history_and_is_read_as_earlier(tmp_path, monkeypatch):
    monkeypatch.setattr(history, "HISTORY", tmp_path / "history")
    run = tmp_path / "cpu"
    curve = {"bpp": [0.3, 0.6], "psnr-rgb": [22.0, 25.0]}
    points.write_json(run / "ddcodec.json", {"name": "ddcodec", "results": curve, "description": "ddcodec 0.5.0, ..."})
    assert history.archive_if_older(run, "cpu", "0.5.0") is None  # the same version stays
    assert history.archive_if_older(run, "cpu", "0.10.0") == tmp_path / "history" / "cpu-v0.5"
    assert not run.exists()
    assert history.earlier_curves("cpu") == {"ddcodec earlier (cpu-v0.5)": curve}


def test_at_most_finds_the_largest_file_that_fits():
    pixels = np.asarray(__import__("PIL.Image").Image.open(ROOT / "tests" / "data" / "kodim23_64.png").convert("RGB"))
    for name in classical.available():
        knob, data = classical.at_most(name, pixels, 2000)
        assert len(data) <= 2000 and data == classical.encode(name, pixels, knob)
        grid = classical.CODECS[name].grid
        larger = grid.index(knob) + 1
        assert larger == len(grid) or len(classical.encode(name, pixels, grid[larger])) > 2000
    assert classical.at_most("jpeg", pixels, 10) is None


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
