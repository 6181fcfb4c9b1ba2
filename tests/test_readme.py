"""The README's API example runs as written (from the repository root)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_api_example_runs(tmp_path, monkeypatch):
    code = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ddcodec" / "data").mkdir(parents=True)
    (tmp_path / "ddcodec" / "data" / "sample.png").write_bytes((ROOT / "ddcodec" / "data" / "sample.png").read_bytes())
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "sample.ddc").exists()
