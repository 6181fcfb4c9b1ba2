"""A side-by-side picture: images of one size in a grid, each with a caption of two lines above it."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CAPTION_PX = 40  # height of the two caption lines above each panel
GAP_PX = 6  # white space between panels


def side_by_side(panels: Sequence[tuple[str, str, np.ndarray]], columns: int = 4, zoom: int = 1) -> Image.Image:
    """The panels (title, detail, uint8 RGB pixels (H, W, 3), all of one size) in rows of `columns`, each enlarged
    `zoom` times by pixel repetition (so that artefacts stay as they are) under its two caption lines (Pillow's
    default font). Raises ValueError when the panels differ in size or there are none."""
    if not panels or len({p[2].shape for p in panels}) != 1:
        raise ValueError("side_by_side needs at least one panel, all of one size")
    h, w = (zoom * n for n in panels[0][2].shape[:2])
    rows = -(-len(panels) // columns)
    cell_w, cell_h = w + GAP_PX, h + CAPTION_PX + GAP_PX
    sheet = Image.new("RGB", (columns * cell_w - GAP_PX, rows * cell_h - GAP_PX), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=15)
    for i, (title, detail, pixels) in enumerate(panels):
        x, y = (i % columns) * cell_w, (i // columns) * cell_h
        draw.text((x + 2, y + 2), title, fill="black", font=font)
        draw.text((x + 2, y + 2 + CAPTION_PX // 2), detail, fill="dimgray", font=font)
        sheet.paste(Image.fromarray(pixels).resize((w, h), Image.Resampling.NEAREST), (x, y + CAPTION_PX))
    return sheet
