"""The rate-distortion benchmark's store of results: one JSON file per (codec, setting, image), written as each
finishes, so that a run picks up where it stopped.

A point lives at `<run>/points/<codec>/<image>_<setting>[_<tag>].json` and holds its key: what must match for the
result to be reused (ddcodec's version, profile and iterations; a classical codec's library versions and save
options). A point whose key differs is computed again. A setting is complete when every image has its point; curves
and BD-rates use complete settings only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np


def append_record(path: Path, record: dict) -> None:
    """Append one JSON line to a probe's record file (made with its folder if needed) and print it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record))


def write_json(path: Path, obj: object) -> None:
    """Write JSON atomically, so an interrupted run never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def point_path(run: Path, codec: str, image: str, setting: float, tag: str = "") -> Path:
    """Where the point of one image at one setting is stored (tag: what tells ddcodec's runs apart)."""
    return run / "points" / codec / f"{image}_{setting:g}{'_' + tag if tag else ''}.json"


def load_point(path: Path, key: dict) -> dict | None:
    """The stored record, or None where there is none or it was made with another key."""
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    return record if record.get("key") == key else None


def save_point(path: Path, key: dict, image: str, setting: float, record: dict) -> dict:
    """Store one image's result at one setting with its key; returns the stored record."""
    stored = {"image": image, "setting": setting, "key": key, **record}
    write_json(path, stored)
    return stored


def _mean(values: list) -> float | None:
    """Mean of the values, None where any is missing (MS-SSIM on small images)."""
    return None if any(v is None for v in values) else float(np.mean(values))


def complete_settings(records: Sequence[dict], settings: Sequence[float], n_images: int) -> list[float]:
    """The settings, in the given order, at which all n_images have a record."""
    return [s for s in settings if sum(r["setting"] == s for r in records) == n_images]


def aggregate(records: Sequence[dict], settings: Sequence[float], n_images: int) -> dict[str, list]:
    """Per complete setting, in the given order, the mean over images of each metric (PSNR averaged per image, as
    CompressAI does)."""
    keys = {"bpp": "bpp", "psnr-rgb": "psnr", "ms-ssim-rgb": "ms_ssim",
            "encoding_time": "encoding_time", "decoding_time": "decoding_time"}
    done = complete_settings(records, settings, n_images)
    return {out: [_mean([r[key] for r in records if r["setting"] == s]) for s in done] for out, key in keys.items()}


def finished_images(records: Sequence[dict], settings: Sequence[float]) -> list[str]:
    """The images, sorted, that have a record at every one of the settings."""
    done = {(r["image"], r["setting"]) for r in records}
    return sorted(i for i in {r["image"] for r in records} if all((i, s) in done for s in settings))


def progress(records: Sequence[dict], settings: Sequence[float]) -> dict[str, int]:
    """Images done at each setting, for a partial curve's description."""
    return {f"{s:g}": sum(r["setting"] == s for r in records) for s in settings}
