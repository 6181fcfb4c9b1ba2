import numpy as np
import pytest
import torch
from PIL import Image

import ddcodec
from ddcodec import InputError
from ddcodec.format.container import parse
from ddcodec.decoders.decode import decode_array
from ddcodec.training.presets import Phase, Preset, WarmUp
from ddcodec.training.warmup import warm_up
from ddcodec.format.reader import read_ints
from ddcodec.training.fit import fit
from ddcodec.metrics import psnr
from ddcodec.component.model import init_weights, network_input
from ddcodec.encoder.ratecontrol import plan

from .conftest import CROPS, crop


def test_round_trip_reports_the_decoded_psnr(encoded, parrot):
    decoded = np.asarray(ddcodec.decode(encoded.data))
    assert decoded.shape == parrot.shape
    assert psnr(decoded, parrot) == pytest.approx(encoded.psnr, abs=0.01)
    flat = np.broadcast_to(parrot.mean((0, 1)).round().astype(np.uint8), parrot.shape)
    assert encoded.psnr > psnr(flat, parrot) + 6  # far above what a failed fit (a flat colour) scores
    assert encoded.psnr > encoded.psnr_float - 1.0  # quantization costs little after fine-tuning
    assert encoded.bpp == 8 * len(encoded.data) / (64 * 64)


def test_both_coders_decode_to_the_same_image(parrot):
    results = {c: ddcodec.encode(parrot, ratio=8, iters=20, coder=c) for c in ("range", "zstd")}
    images = {c: decode_array(r.data) for c, r in results.items()}
    np.testing.assert_array_equal(images["range"], images["zstd"])
    assert results["range"].n_bytes < results["zstd"].n_bytes


@pytest.mark.parametrize("name", CROPS)
@pytest.mark.parametrize("bpp", [0.8, 3.0])
def test_bpp_target_is_respected_and_approached(name, bpp):
    result = ddcodec.encode(crop(name), bpp=bpp, iters=40, input="seed")
    assert 0.8 * bpp <= result.bpp <= bpp


def test_odd_size_grayscale_round_trip(parrot):
    gray = np.asarray(Image.fromarray(parrot).convert("L"))[:45, :37]
    result = ddcodec.encode(gray, bpp=4, iters=60)
    decoded = ddcodec.decode(result.data)
    assert decoded.mode == "L" and decoded.size == (37, 45)
    assert psnr(np.asarray(decoded)[:, :, None], gray[:, :, None]) == pytest.approx(result.psnr, abs=0.01)


def test_accepts_path_pil_and_array_alike(tmp_path, parrot):
    path = tmp_path / "p.png"
    Image.fromarray(parrot).save(path)
    datas = {ddcodec.encode(src, ratio=10, iters=5).data for src in (path, Image.fromarray(parrot), parrot)}
    assert len(datas) == 1  # same pixels, same seed: the same file


def test_rgba_is_converted_with_a_warning(parrot):
    rgba = Image.fromarray(parrot).convert("RGBA")
    with pytest.warns(UserWarning, match="alpha dropped"):
        result = ddcodec.encode(rgba, ratio=10, iters=5)
    assert result.arch.channels == 3


def test_sixteen_bit_grayscale_is_scaled_to_eight_bits():
    ramp = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 64).astype(np.uint16)
    with pytest.warns(UserWarning, match="8-bit grayscale"):
        result = ddcodec.encode(Image.fromarray(ramp), ratio=4, iters=5)
    assert result.arch.channels == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(bpp=0.01), "too small"),
        (dict(bpp=-1), "positive"),
        (dict(bpp=1, ratio=2), "at most one"),
        (dict(quality=9), "quality"),
        (dict(coder="lzma"), "coder"),
        (dict(iters=0), "iters"),
        (dict(tries=0), "tries"),
    ],
)
def test_bad_options_raise_input_error(parrot, kwargs, message):
    with pytest.raises(InputError, match=message):
        ddcodec.encode(parrot, **kwargs)


def test_bad_arrays_raise_input_error():
    for bad in (np.zeros((0, 5, 3), np.uint8), np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 2), np.uint8)):
        with pytest.raises(InputError):
            ddcodec.encode(bad)


def test_batched_encoding_matches_one_at_a_time():
    images = [crop("kodim23"), crop("kodim19"), crop("kodim05")[:40, :48]]
    batched = ddcodec.encode_many(images, bpp=2.0, iters=120, batch=2)
    alone = [ddcodec.encode(image, bpp=2.0, iters=120) for image in images]
    for image, b, a in zip(images, batched, alone):
        assert b.arch == a.arch and b.n_bytes <= 2.0 * image.shape[0] * image.shape[1] / 8
        assert psnr(decode_array(b.data), image) == pytest.approx(b.psnr, abs=0.01)
        assert b.psnr == pytest.approx(a.psnr, abs=0.5)


def test_warm_up_keeps_each_images_best_seed():
    images = [crop(name) for name in CROPS[:2]]
    arch = plan(64, 64, 3, ratio=8).arch
    target = torch.stack([torch.from_numpy(a.copy()).permute(2, 0, 1) for a in images]).float() / 255
    preset = Preset(100, WarmUp(candidates=3, survivors=(3,), share=0.1, coarse=0))
    seeds, z, weights = warm_up(arch, target, 5, preset, lr=0.02)
    for b in range(2):
        alone = [
            fit(arch, target[b : b + 1], network_input(arch, s)[None],
                [w[None] for w in init_weights(arch, torch.Generator().manual_seed(s))], Phase("alone", 0.1), 10,
                0.02, frozen=arch.bn_scales)[1][0]
            for s in (5, 6, 7)
        ]
        assert seeds[b] == 5 + int(np.argmin(alone))
        assert torch.equal(z[b], network_input(arch, seeds[b]))
    assert [w.shape[0] for w in weights] == [2] * len(weights)


def test_warm_up_rounds_narrow_the_candidates():
    arch = plan(64, 64, 3, ratio=8).arch
    target = torch.from_numpy(crop(CROPS[0]).copy()).permute(2, 0, 1)[None].float() / 255
    preset = Preset(100, WarmUp(candidates=4, survivors=(4, 2), share=0.05, coarse=1))
    seeds, z, weights = warm_up(arch, target, 0, preset, lr=0.02)
    assert seeds[0] in range(4) and z.shape[0] == 1 and weights[0].shape[0] == 1


def test_the_chosen_seed_is_in_the_header(parrot):
    header = parse(ddcodec.encode(parrot, ratio=8, iters=100, seed=40, tries=3).data)[0]
    assert header.seed in (40, 41, 42)
    assert parse(ddcodec.encode(parrot, ratio=8, iters=100, seed=40, tries=1).data)[0].seed == 40


def test_batchnorm_scales_are_coded_as_the_constant_one(encoded):
    header, ints = read_ints(encoded.data)
    for t in header.arch.bn_scales:
        assert header.step_codes[t] == 0 and set(ints[t].tolist()) == {1}
