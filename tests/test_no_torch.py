"""Decoding works where torch is not installed: a subprocess that blocks `import torch` before ddcodec is imported."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from ddcodec.decoders import npdecode

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
sys.argv = ["ddcodec", *sys.argv[1:]]
from ddcodec.cli import main
main()
"""


def ddcodec_without_torch(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", SCRIPT, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_help_info_and_decode_without_torch(encoded, tmp_path):
    src = tmp_path / "p.ddc"
    src.write_bytes(encoded.data)
    assert "encode" in ddcodec_without_torch("--help", cwd=tmp_path).stdout
    info = ddcodec_without_torch("info", src, "--json", cwd=tmp_path)
    assert info.returncode == 0 and json.loads(info.stdout)["width"] == 64
    assert ddcodec_without_torch("decode", src, "out.png", cwd=tmp_path).returncode == 0
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), npdecode.decode_array(encoded.data))


def test_pillow_and_api_decode_without_torch(encoded, tmp_path):
    (tmp_path / "p.ddc").write_bytes(encoded.data)
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import ddcodec; from PIL import Image\n"
        "image = Image.open('p.ddc'); image.load()\n"
        "assert image.size == (64, 64) and image.mode == 'RGB'\n"
        "assert (ddcodec.decode(open('p.ddc', 'rb'), output='numpy') == ddcodec.decode('p.ddc', output='numpy')).all()\n"
        "print(ddcodec.read_header('p.ddc').arch.width)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "64"


def test_encode_without_torch_is_one_error_line(tmp_path):
    result = ddcodec_without_torch("encode", ROOT / "tests" / "data" / "kodim23_64.png", "o.ddc", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: encoding needs torch") and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "o.ddc").exists()


def test_the_command_line_starts_without_numpy_or_torch():
    code = "import sys, ddcodec.cli; print(sorted({'numpy', 'torch', 'ray'} & set(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stderr


def test_an_arm_file_decodes_in_a_fresh_process_without_a_compiler_or_a_cache(tmp_path):
    """No just-in-time compiler on the decoder's path and nothing written (issue 30: numba compiled the ARM's
    loops at the first decode, about a second and 130 MB, and failed where its cache was not writable)."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import ddcodec\n"
        f"ddcodec.decode({str(ROOT / 'tests' / 'data' / 'v4_kodim23_40x48.ddc')!r})\n"
        "print(sorted({'numba', 'llvmlite'} & set(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    before = {p: p.stat().st_mtime_ns for p in (ROOT / "ddcodec").rglob("*")}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert {p: p.stat().st_mtime_ns for p in (ROOT / "ddcodec").rglob("*")} == before and not list(tmp_path.iterdir())
