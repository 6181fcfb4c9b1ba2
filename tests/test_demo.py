"""`ddcodec demo`: the side-by-side picture has one labelled panel per codec, in a short configuration."""

from PIL import Image

from ddcodec import classical, demo
from ddcodec.sidebyside import CAPTION_PX, GAP_PX


def test_demo_writes_a_picture_with_one_labelled_panel_per_codec(tmp_path):
    lines = []
    panels = demo.run_demo(tmp_path, iters=20, device="cpu", echo=lines.append)
    codecs = ["original", "ddcodec", *classical.available()]
    assert [p.codec for p in panels] == codecs
    assert [p.label for p in panels[2:]] == [classical.CODECS[c].label for c in codecs[2:]]
    assert all(p.n_bytes > 0 and p.psnr > 10 for p in panels[1:])
    assert all(p.n_bytes <= panels[1].n_bytes for p in panels[2:] if p.fits)
    assert all((tmp_path / p.file).exists() for p in panels)
    picture = Image.open(tmp_path / "comparison.png")
    side = 256 + GAP_PX
    assert picture.size == (4 * side - GAP_PX, -(-len(panels) // 4) * (side + CAPTION_PX) - GAP_PX)
    assert any(line.startswith("ddcodec loses to") for line in lines)
