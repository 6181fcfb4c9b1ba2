"""Restoration: the three tasks on tiny inputs, both priors, odd and small sizes, and the CLI's bad-input rules."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ddcodec import InputError
from ddcodec.restore import tasks as restore
from ddcodec.cli import main
from ddcodec.restore.dip import SkipConfig, SkipNet
from ddcodec.metrics import psnr

from .conftest import DATA

SRC = str(DATA / "kodim23_64.png")
FAST = {"iters": 8, "lr": 0.02}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small images: one thread avoids OpenMP waits that cost 10-30x on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("prior", ["dd", "dip"])
def test_denoise_removes_some_noise(parrot, prior):
    degraded = noisy(parrot, 25)
    out = np.asarray(restore.denoise(degraded, sigma=25, prior=prior, iters=80, lr=0.02))
    assert out.shape == parrot.shape and psnr(out, parrot) > psnr(degraded, parrot) + 1


@pytest.mark.parametrize("prior", ["dd", "dip"])
@pytest.mark.parametrize("shape", [(37, 53, 3), (7, 5, 1), (64, 33, 3)])
def test_any_size_and_gray(prior, shape):
    image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    assert np.asarray(restore.denoise(image, sigma=10, prior=prior, **FAST)).shape == shape[:2] + (
        () if shape[2] == 1 else (3,))
    up = restore.superres(image, scale=2, prior=prior, iters=2)
    assert up.size == (2 * shape[1], 2 * shape[0])


def test_inpaint_keeps_known_pixels_and_fills_the_rest(parrot):
    out = np.asarray(restore.inpaint(parrot, missing_fraction=0.5, prior="dip", iters=60, lr=0.02, seed=3))
    known = np.random.default_rng(3).random(parrot.shape[:2]) >= 0.5
    assert np.array_equal(out[known], parrot[known])
    holes = np.where(known[..., None], parrot, 0).astype(np.uint8)
    assert psnr(out, parrot) > psnr(holes, parrot) + 5


def test_superres_downsampler_matches_the_input(parrot):
    small = parrot[::2, ::2]
    out = restore.superres(small, scale=2, prior="dd", iters=60, lr=0.02)
    assert out.size == (64, 64)
    x = torch.from_numpy(np.asarray(out).copy()).permute(2, 0, 1).float()[None] / 255
    back = (restore.downsample(x, (32, 32))[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
    assert psnr(back, small) > 22


def test_estimate_sigma():
    flat = np.full((64, 64, 3), 128, np.uint8)
    y = torch.from_numpy(noisy(flat, 20)).permute(2, 0, 1).float() / 255
    assert restore.estimate_sigma(y) * 255 == pytest.approx(20, rel=0.1)


def test_skip_net_shapes():
    net = SkipNet(SkipConfig(channels=8, scales=3), 3)
    assert net(torch.rand(2, 32, 16, 24)).shape == (2, 3, 16, 24)


@pytest.mark.parametrize("call", [
    lambda im: restore.denoise(im, sigma=-1),
    lambda im: restore.denoise(im, prior="bm3d"),
    lambda im: restore.denoise(im, preset="huge"),
    lambda im: restore.denoise(im, iters=0),
    lambda im: restore.superres(im, scale=1),
    lambda im: restore.inpaint(im),
    lambda im: restore.inpaint(im, missing_fraction=1.0),
    lambda im: restore.inpaint(im, mask=np.zeros((3, 3), np.uint8)),
    lambda im: restore.inpaint(im, mask=np.zeros((64, 64), np.uint8)),
])
def test_bad_options_raise_input_error(parrot, call):
    with pytest.raises(InputError):
        call(parrot)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_commands(tmp_path):
    mask = tmp_path / "mask.png"
    Image.fromarray(np.where(np.arange(64)[:, None] % 8 < 6, 255, 0).repeat(64, 1).astype(np.uint8)).save(mask)
    for args in (["denoise", SRC], ["inpaint", SRC, mask], ["inpaint", SRC, "--missing-fraction", "0.3"],
                 ["superres", SRC, "--scale", "2"]):
        out = tmp_path / f"{args[0]}.png"
        out.unlink(missing_ok=True)
        result = run("restore", *args, out, "--iters", "3", "--quiet")
        assert result.exit_code == 0, result.output
        assert "restored" in result.output and out.exists()
    assert Image.open(tmp_path / "superres.png").size == (128, 128)


def assert_one_line_error(result):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output


def test_cli_bad_input_one_line_and_no_output(tmp_path):
    out = tmp_path / "out.png"
    (tmp_path / "bad.png").write_bytes(b"not an image")
    for args in (["denoise", tmp_path / "bad.png", out], ["denoise", tmp_path / "missing.png", out],
                 ["denoise", SRC, tmp_path / "out.xyz"], ["denoise", SRC, out, "--sigma", "-3"],
                 ["superres", SRC, out, "--scale", "1"], ["inpaint", SRC, out],
                 ["inpaint", SRC, tmp_path / "bad.png", out], ["denoise", SRC, tmp_path / "nodir" / "o.png"]):
        assert_one_line_error(run("restore", *args, "--iters", "2", "--quiet"))
    assert {p.name for p in tmp_path.iterdir()} == {"bad.png"}


def test_cli_keeps_existing_output_without_overwrite(tmp_path):
    out = tmp_path / "out.png"
    out.write_bytes(b"keep")
    assert_one_line_error(run("restore", "denoise", SRC, out, "--iters", "2", "--quiet"))
    assert out.read_bytes() == b"keep"
    assert run("restore", "denoise", SRC, out, "--iters", "2", "--quiet", "-y").exit_code == 0
    assert Image.open(out).size == (64, 64)


def test_readme_restore_example_runs(tmp_path, monkeypatch):
    """The README's restoration example, with 2 iterations per task instead of the defaults."""
    import dataclasses
    import re

    root = DATA.parent.parent
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", (root / "README.md").read_text(), re.S)
               if "ddcodec.restore" in b]
    monkeypatch.setattr(restore, "SETTINGS", {k: dataclasses.replace(v, iters=2) for k, v in restore.SETTINGS.items()})
    monkeypatch.chdir(root)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["upscaled"].size == (256, 256) and scope["filled"].size == (128, 128)
