"""Earlier versions' rate-distortion runs: `benchmarks/results/<preset>/` holds the current version's run and
`benchmarks/results/history/<preset>-v<version>/` each earlier one, read back as "earlier ddcodec" curves.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

HISTORY = Path(__file__).resolve().parent / "results" / "history"
EARLIER = "ddcodec earlier"  # name prefix of earlier curves


def run_version(run: Path) -> str | None:
    """The ddcodec version of the run in a folder (its ddcodec.json), None where it has none."""
    path = run / "ddcodec.json"
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    if "version" in doc:
        return doc["version"]
    found = re.match(r"ddcodec (\d[\w.]*)", doc.get("description", ""))
    return found.group(1) if found else None


def _short(version: str) -> str:
    """0.9.0 -> 0.9 (the history folders' spelling); other versions as they are."""
    return version[:-2] if version.endswith(".0") else version


def archive_if_older(run: Path, preset: str, version: str) -> Path | None:
    """Move the run in `run` to the history folder when it was made by another ddcodec version than `version`;
    returns where it went (None: nothing to move). Refuses to overwrite an existing history entry."""
    old = run_version(run)
    if old is None or old == version:
        return None
    target = HISTORY / f"{preset}-v{_short(old)}"
    if target.exists():
        raise SystemExit(f"error: {run} holds ddcodec {old}'s run but {target} exists already; move one by hand")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(run), str(target))
    return target


def _version_order(folder: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", folder.name.rsplit("-v", 1)[-1]))


def earlier_curves(preset: str) -> dict[str, dict]:
    """The ddcodec curves of the preset's earlier versions, oldest first, named `ddcodec earlier (<folder>)`."""
    folders = sorted(HISTORY.glob(f"{preset}-v*/ddcodec.json"), key=lambda p: _version_order(p.parent))
    return {f"{EARLIER} ({p.parent.name})": json.loads(p.read_text())["results"] for p in folders}
