"""The README's Python examples run as written, one after the other, from a folder outside the repository."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_python_examples_run_from_any_folder(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    blocks = [b for b in blocks if "ddcodec.restore" not in b]  # minutes at its defaults: test_restore runs it short
    assert len(blocks) >= 2
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", "\n".join(blocks)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert {"sample.ddc", "sample-gray.png", "gray.ddc"} <= {p.name for p in tmp_path.iterdir()}
