"""Encoding through a local Ray instance (2 CPUs): `ddcodec encode ... --ray` and ddcodec.distributed."""

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import ddcodec
from ddcodec.cli import main

from .conftest import DATA

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def local_ray():
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield
    ray.shutdown()


@pytest.fixture
def images(tmp_path):
    paths = []
    for i, name in enumerate(["kodim23", "kodim05", "kodim19"]):
        path = tmp_path / f"{name}.png"
        Image.open(DATA / f"{name}_64.png").crop((0, 0, 32, 32 + 8 * (i == 2))).save(path)
        paths.append(path)
    return paths


def test_encode_with_ray_writes_every_file(local_ray, images, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    args = ["encode", *map(str, images), str(out), "--bpp", "3", "--iters", "5", "--tries", "1", "--ray"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    for src in images:
        decoded = ddcodec.decode(out / f"{src.stem}.ddc")
        assert decoded.size == Image.open(src).size
    assert result.output.count(" bytes, ") == 3


def test_skip_existing_resumes_and_batches_group_sizes(local_ray, images, tmp_path):
    from ddcodec.distributed import encode_on_ray

    outputs = [tmp_path / f"{p.stem}.ddc" for p in images]
    outputs[0].write_bytes(b"kept")
    done = list(encode_on_ray(images, outputs, skip_existing=True, batch=2, bpp=3, iters=5, tries=1))
    assert sorted(o.name for o, _ in done) == sorted(o.name for o in outputs[1:])
    assert outputs[0].read_bytes() == b"kept" and all(o.exists() for o in outputs)


def test_an_unreadable_image_is_one_error_line(local_ray, images, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    result = CliRunner().invoke(main, ["encode", str(bad), str(tmp_path / "b.ddc"), "--iters", "5", "--ray"])
    assert result.exit_code == 2 and result.output.startswith("error: ") and "bad.png" in result.output
    assert not (tmp_path / "b.ddc").exists()


def test_one_photos_tiles_are_ray_tasks(local_ray, tmp_path, monkeypatch):
    import torch

    from ddcodec.format import tiles

    monkeypatch.setattr(tiles, "TILE_SIDE", 32)
    src, ddc = tmp_path / "wide.png", tmp_path / "wide.ddc"
    Image.open(DATA / "kodim23_64.png").crop((0, 0, 64, 48)).save(src)
    args = ["encode", str(src), str(ddc), "--bpp", "2", "--iters", "10", "--tries", "1", "--ray", "--resume"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a Ray task of one CPU has
    try:
        here = ddcodec.encode(src, bpp=2, iters=10, tries=1)
    finally:
        torch.set_num_threads(threads)
    assert ddc.read_bytes() == here.data and len(here.tiles) == 4 and not (tmp_path / "wide.ddc.tiles").exists()
