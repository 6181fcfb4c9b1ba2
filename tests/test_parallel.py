"""`ddcodec encode --jobs N --threads T`: images encoded in worker processes (ddcodec.parallel)."""

from click.testing import CliRunner
from PIL import Image

from ddcodec.cli import main

from .conftest import DATA

FAST = ["--bpp", "3", "--iters", "5", "--tries", "1"]


def _images(tmp_path, names=("kodim23", "kodim05", "kodim19")):
    paths = []
    for name in names:
        path = tmp_path / f"{name}.png"
        Image.open(DATA / f"{name}_64.png").crop((0, 0, 32, 32)).save(path)
        paths.append(path)
    return paths


def test_jobs_write_the_same_files_as_one_process(tmp_path):
    images = _images(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    runner = CliRunner()
    first = runner.invoke(main, ["encode", *map(str, images), str(one), *FAST, "--threads", "1", "--quiet"])
    second = runner.invoke(main, ["encode", *map(str, images), str(two), *FAST, "--jobs", "2", "--threads", "1"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert second.output.count(" bytes, ") == 3
    for src in images:
        assert (one / f"{src.stem}.ddc").read_bytes() == (two / f"{src.stem}.ddc").read_bytes()


def test_a_bad_image_in_a_worker_is_one_error_line(tmp_path):
    images = _images(tmp_path, ("kodim23",))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(main, ["encode", str(bad), *map(str, images), str(out), *FAST, "--jobs", "2"])
    assert result.exit_code == 2
    assert "bad.png" in result.output and "Traceback" not in result.output
    assert not (out / "bad.ddc").exists()


def test_bad_jobs_and_threads_are_refused(tmp_path):
    images = _images(tmp_path, ("kodim23",))
    for flag in (["--jobs", "0"], ["--threads", "0"], ["--jobs", "2", "--ray"]):
        result = CliRunner().invoke(main, ["encode", str(images[0]), str(tmp_path / "x.ddc"), *flag])
        assert result.exit_code == 2 and result.output.startswith("error:"), result.output
