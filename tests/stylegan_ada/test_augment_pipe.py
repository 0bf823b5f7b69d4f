"""ADA augmentation pipeline: presets, identity at p=0, each transform, probabilities, gradients, speed."""
from __future__ import annotations

import json

import pytest
import torch

from stylegan_ada.augment_pipe import AUGPIPE_SPECS, AugmentPipe, make_augment_pipe

BGC_KEYS = {"xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
            "brightness", "contrast", "lumaflip", "hue", "saturation"}


def smooth_images(n: int = 1, size: int = 32, channels: int = 3) -> torch.Tensor:
    """Band-limited test images in [-1, 1] (the wavelet resampler is exact only up to a small blur)."""
    yy, xx = torch.meshgrid(torch.arange(float(size)), torch.arange(float(size)), indexing="ij")
    planes = [torch.sin(xx * 0.2 + yy * 0.1), torch.cos(yy * 0.25) * torch.sin(xx * 0.1 + 1),
              torch.sin((xx + yy) * 0.15)]
    img = torch.stack(planes[:channels]) * 0.8
    return torch.stack([img * (1 - 0.1 * k) for k in range(n)])


def max_err(a: torch.Tensor, b: torch.Tensor, margin: int = 0) -> float:
    if margin:
        a, b = a[..., margin:-margin, margin:-margin], b[..., margin:-margin, margin:-margin]
    return (a - b).abs().max().item()


def test_presets_and_defaults_match_reference():
    assert set(AUGPIPE_SPECS["bgc"]) == BGC_KEYS and set(AUGPIPE_SPECS["bgc"].values()) == {1}
    assert set(AUGPIPE_SPECS["blit"]) == {"xflip", "rotate90", "xint"}
    assert set(AUGPIPE_SPECS["geom"]) == {"scale", "rotate", "aniso", "xfrac"}
    assert set(AUGPIPE_SPECS["color"]) == {"brightness", "contrast", "lumaflip", "hue", "saturation"}
    pipe = AugmentPipe(**AUGPIPE_SPECS["bgc"])
    kw = pipe.init_kwargs
    assert {k: kw[k] for k in ("xint_max", "scale_std", "rotate_max", "aniso_std", "xfrac_std", "brightness_std",
                               "contrast_std", "hue_max", "saturation_std", "imgfilter_std", "noise_std",
                               "cutout_size")} == dict(xint_max=0.125, scale_std=0.2, rotate_max=1, aniso_std=0.2,
                                                       xfrac_std=0.125, brightness_std=0.2, contrast_std=0.5,
                                                       hue_max=1, saturation_std=1, imgfilter_std=1, noise_std=0.1,
                                                       cutout_size=0.5)
    assert kw["imgfilter_bands"] == [1, 1, 1, 1] and kw["noise"] == 0
    again = AugmentPipe(**json.loads(json.dumps(kw)))  # JSON-able and round-trips
    assert again.init_kwargs == kw
    assert set(pipe.state_dict()) == {"p", "Hz_geom", "Hz_fbank"} and pipe.p.ndim == 0
    assert make_augment_pipe("bgc", p=0.25).p.item() == 0.25
    with pytest.raises(ValueError, match="bgc"):
        make_augment_pipe("nope")


@pytest.mark.parametrize("spec", ["bgc", "bgcfnc"])
def test_p_zero_is_identity(spec):
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    y = make_augment_pipe(spec, p=0)(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert max_err(y, x) < 1e-5


def test_xflip_and_rotate90_and_integer_translation():
    img = smooth_images()
    flip = AugmentPipe(xflip=1)
    assert max_err(flip(img, debug_percentile=0.25), img) < 1e-5  # percentile < 0.5: no flip
    assert max_err(flip(img, debug_percentile=0.75), img.flip(3)) < 0.03  # wavelet resampling: tiny blur
    rot = AugmentPipe(rotate90=1)
    for q, k in [(0.3, 1), (0.6, 2), (0.9, 3)]:
        out = rot(img, debug_percentile=q)
        errs = [max_err(out, img.rot90(j, [2, 3])) for j in range(4)]
        assert errs[k] < 0.04 and min(e for j, e in enumerate(errs) if j != k) > 0.5
    shift = AugmentPipe(xint=1)  # percentile 0.75 -> t = 0.0625 * 32 = 2 pixels right and down
    out = shift(img, debug_percentile=0.75)
    assert max_err(out[..., 2:, 2:], img[..., :-2, :-2]) < 1e-5


def test_general_geometry_at_percentiles():
    img = smooth_images()
    for spec in ("scale", "aniso", "rotate", "xfrac"):
        pipe = AugmentPipe(**{spec: 1})
        assert max_err(pipe(img, debug_percentile=0.5), img) < 1e-5, spec  # median parameter = identity
        assert max_err(pipe(img, debug_percentile=0.9), img, margin=6) > 0.1, spec
    # Zoom by 2^(erfinv(0.8) * 0.2) ~ 1.19 (the reference's debug "percentile" has no sqrt 2): the centre
    # pixel stays, content moves outwards.
    out = AugmentPipe(scale=1)(img, debug_percentile=0.9)
    s = 2 ** (torch.erfinv(torch.tensor(0.8)).item() * 0.2)
    ref = torch.nn.functional.grid_sample(img, torch.nn.functional.affine_grid(
        torch.tensor([[[1 / s, 0, 0], [0, 1 / s, 0]]]), list(img.shape), align_corners=False), align_corners=False)
    assert max_err(out, ref, margin=4) < 0.05


def test_color_transforms_do_what_they_say():
    img = smooth_images(n=2)
    q = 0.9
    b = torch.erfinv(torch.tensor(2 * q - 1)).item() * 0.2
    out = AugmentPipe(brightness=1)(img, debug_percentile=q)
    assert torch.allclose(out, img + b, atol=1e-6)
    c = 2 ** (torch.erfinv(torch.tensor(2 * q - 1)).item() * 0.5)
    assert torch.allclose(AugmentPipe(contrast=1)(img, debug_percentile=q), img * c, atol=1e-5)
    grey = img[:, :1].repeat(1, 3, 1, 1)
    assert torch.allclose(AugmentPipe(lumaflip=1)(grey, debug_percentile=0.75), -grey, atol=1e-5)
    assert torch.allclose(AugmentPipe(lumaflip=1)(img, debug_percentile=0.75).mean(1), -img.mean(1), atol=1e-5)
    # A hue rotation by 120 degrees about the grey axis cycles the RGB channels; grey stays grey.
    hue = AugmentPipe(hue=1)
    assert torch.allclose(hue(img, debug_percentile=5 / 6), img[:, [2, 0, 1]], atol=1e-5)
    assert torch.allclose(hue(grey, debug_percentile=0.7), grey, atol=1e-5)
    # Saturation keeps the grey (channel mean) component and scales the rest.
    sat = 2 ** torch.erfinv(torch.tensor(2 * 0.1 - 1)).item()
    mean = img.mean(1, keepdim=True)
    assert torch.allclose(AugmentPipe(saturation=1)(img, debug_percentile=0.1), mean + sat * (img - mean), atol=1e-5)
    single = AugmentPipe(**AUGPIPE_SPECS["color"])(img[:, :1], debug_percentile=0.9)
    assert single.shape == (2, 1, 32, 32)


def test_cutout_and_band_filter():
    ones = torch.ones(2, 3, 32, 32)
    out = AugmentPipe(cutout=1)(ones, debug_percentile=0.5)  # centred square of half the size, zeroed
    assert out[:, :, 8:24, 8:24].abs().sum() == 0 and out.sum() == 2 * 3 * (32 * 32 - 16 * 16)
    bands = AugmentPipe(imgfilter=1, imgfilter_bands=[0, 0, 0, 1])  # only the top octave is amplified
    torch.manual_seed(0)
    noisy = smooth_images() + 0.1 * torch.randn(1, 3, 32, 32)
    boosted = bands(noisy, debug_percentile=0.95)
    assert boosted.shape == noisy.shape
    assert boosted.diff(dim=3).abs().mean() > 1.3 * noisy.diff(dim=3).abs().mean()  # more high-frequency energy


def test_applied_fraction_follows_p():
    torch.manual_seed(1)
    n, p = 4000, 0.3
    pipe = make_augment_pipe("color", p=p, contrast=0, lumaflip=0, hue=0, saturation=0)
    shifts = pipe(torch.zeros(n, 3, 1, 1))[:, 0, 0, 0]  # brightness only: output = offset b
    applied = shifts != 0
    assert abs(applied.float().mean().item() - p) < 0.03
    assert abs(shifts[applied].std().item() - 0.2) < 0.02
    g = make_augment_pipe("bgc", p=p)._geometric_matrix(n, 32, 32, torch.device("cpu"), None)
    flipped = g[:, 0, 0] * g[:, 1, 1] - g[:, 0, 1] * g[:, 1, 0] < 0  # det < 0: xflip applied and drew 1
    assert abs(flipped.float().mean().item() - p / 2) < 0.03
    rot = make_augment_pipe("geom", p=p, scale=0, aniso=0, xfrac=0)._geometric_matrix(n, 32, 32, "cpu", None)
    rotated = (rot[:, 0, 1].abs() > 1e-6)
    assert abs(rotated.float().mean().item() - p) < 0.03  # P(pre or post rotation) = rotate * p


def test_deterministic_under_seed_and_p_buffer_moves_with_module():
    x = smooth_images(n=3)
    pipe = make_augment_pipe("bgc", p=0.8)
    torch.manual_seed(123)
    a = pipe(x)
    torch.manual_seed(123)
    b = pipe(x)
    torch.manual_seed(124)
    c = pipe(x)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    clone = make_augment_pipe("bgc")
    clone.load_state_dict(pipe.state_dict())
    assert clone.p.item() == pytest.approx(0.8)


def test_shapes_dtypes_non_square_and_bad_input():
    pipe = make_augment_pipe("bgcfnc", p=1)
    torch.manual_seed(0)
    for shape, dtype in [((2, 3, 32, 48), torch.float32), ((3, 1, 32, 32), torch.float64)]:
        y = pipe(torch.rand(shape, dtype=dtype) * 2 - 1)
        assert y.shape == shape and y.dtype == dtype and torch.isfinite(y).all()
    with pytest.raises(ValueError, match="channels"):
        make_augment_pipe("color", p=1)(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="N, C, H, W"):
        pipe(torch.zeros(3, 8, 8))


def test_gradients_first_and_second_order():
    pipe = make_augment_pipe("bgc", p=1).double()
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)

    def f(inp):
        torch.manual_seed(7)  # same random transform on every evaluation
        return pipe(inp)

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5, fast_mode=True)
    assert torch.autograd.gradgradcheck(f, (x,), eps=1e-6, atol=1e-4, fast_mode=True)


def test_r1_style_double_backward_reaches_discriminator_weights():
    pipe = make_augment_pipe("bgc", p=1)
    disc = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Softplus(), torch.nn.Flatten(),
                               torch.nn.LazyLinear(1))
    reals = torch.randn(2, 3, 16, 16).requires_grad_(True)
    logits = disc(pipe(reals))
    (grad,) = torch.autograd.grad(logits.sum(), reals, create_graph=True)
    penalty = grad.square().sum()
    penalty.backward()
    weights = [disc[0].weight, disc[3].weight]  # biases do not change d(logits)/d(images)
    assert all(w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0 for w in weights)
