"""The differentiable, non-leaking augmentation pipeline of ADA (Karras et al. 2020, "Training Generative
Adversarial Networks with Limited Data").

Every augmentation is applied to each image independently with probability ``multiplier * p``, where
``p`` (a scalar buffer) is the overall strength that ADA adjusts during training. Geometric
transforms (pixel blitting and general geometry) are folded into one inverse matrix per image and
executed by a single resampling: reflect-pad, 2x upsample with the orthogonal sym6 wavelet,
bilinear ``grid_sample``, 2x downsample with the same (flipped) wavelet. Colour transforms are folded
into one 4x4 matrix per image. Then optional image-space filtering, additive noise and cutout.

All operations are differentiable w.r.t. the images, to second order (R1 on augmented reals): the
resampling goes through `stylegan_ada.ops.grid_sample`, since PyTorch's CUDA grid sampler has no double
backward (checked by gradgradcheck in tests/stylegan_ada/test_augment_pipe.py and tests/stylegan_ada/test_ops.py).

Randomness comes from the global torch generator of the images' device, drawn in the same order as in
the reference implementation: for the same seed the outputs agree with it up to float rounding
(max abs diff 2e-4 over bgc/bgcfnc, 32-256 px, checked during development). One deliberate
difference: when no image of the batch is geometrically transformed (e.g. p = 0) the resampling is
skipped, so the output is exactly the input instead of the input plus rounding noise.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F

from stylegan_ada.ada import matrices as M
from stylegan_ada.ada.filters import SYM6, octave_filter_bank
from stylegan_ada.ops import upfirdn2d
from stylegan_ada.ops.grid_sample import grid_sample

__all__ = ["AugmentPipe", "AUGPIPE_SPECS", "make_augment_pipe"]

_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)

#: Named presets of probability multipliers (the reference's ``--augpipe`` choices).
AUGPIPE_SPECS: dict[str, dict[str, float]] = {
    "blit": dict(_BLIT),
    "geom": dict(_GEOM),
    "color": dict(_COLOR),
    "filter": dict(imgfilter=1),
    "noise": dict(noise=1),
    "cutout": dict(cutout=1),
    "bg": {**_BLIT, **_GEOM},
    "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1, "cutout": 1},
}

_GEOMETRIC_KEYS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
_COLOR_KEYS = ("brightness", "contrast", "lumaflip", "hue", "saturation")


def _uniform_at(half_range: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Value of U(-half_range, half_range) at a percentile (for ``debug_percentile``)."""
    return lambda q: (q * 2 - 1) * half_range


def _normal_at(std: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda q: torch.erfinv(q * 2 - 1) * std


def _log2normal_at(std: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda q: torch.exp2(torch.erfinv(q * 2 - 1) * std)


def _choice_at(k: int) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda q: torch.floor(q * k)


class AugmentPipe(torch.nn.Module):
    """ADA augmentation pipeline; all multipliers default to 0 (disabled), parameters to the paper's values."""

    def __init__(self,
                 xflip: float = 0, rotate90: float = 0, xint: float = 0, xint_max: float = 0.125,
                 scale: float = 0, rotate: float = 0, aniso: float = 0, xfrac: float = 0,
                 scale_std: float = 0.2, rotate_max: float = 1, aniso_std: float = 0.2, xfrac_std: float = 0.125,
                 brightness: float = 0, contrast: float = 0, lumaflip: float = 0, hue: float = 0,
                 saturation: float = 0, brightness_std: float = 0.2, contrast_std: float = 0.5, hue_max: float = 1,
                 saturation_std: float = 1,
                 imgfilter: float = 0, imgfilter_bands: tuple[float, ...] | list[float] = (1, 1, 1, 1),
                 imgfilter_std: float = 1,
                 noise: float = 0, cutout: float = 0, noise_std: float = 0.1, cutout_size: float = 0.5):
        super().__init__()
        scalars = dict(xflip=xflip, rotate90=rotate90, xint=xint, xint_max=xint_max, scale=scale, rotate=rotate,
                       aniso=aniso, xfrac=xfrac, scale_std=scale_std, rotate_max=rotate_max, aniso_std=aniso_std,
                       xfrac_std=xfrac_std, brightness=brightness, contrast=contrast, lumaflip=lumaflip, hue=hue,
                       saturation=saturation, brightness_std=brightness_std, contrast_std=contrast_std,
                       hue_max=hue_max, saturation_std=saturation_std, imgfilter=imgfilter,
                       imgfilter_std=imgfilter_std, noise=noise, cutout=cutout, noise_std=noise_std,
                       cutout_size=cutout_size)
        self.init_kwargs: dict[str, Any] = {k: float(v) for k, v in scalars.items()}
        self.init_kwargs["imgfilter_bands"] = [float(b) for b in imgfilter_bands]
        # Multipliers and distribution parameters (log2 std for scale/aniso/contrast/saturation; ranges
        # relative to the image size for translations; 1 = full circle for rotate_max/hue_max).
        for key, value in self.init_kwargs.items():
            setattr(self, key, value)

        self.register_buffer("p", torch.ones([]))  # overall strength; training sets it (ADA adjusts it)
        self.register_buffer("Hz_geom", upfirdn2d.setup_filter(list(SYM6)))
        self.register_buffer("Hz_fbank", torch.as_tensor(octave_filter_bank(), dtype=torch.float32))

    def extra_repr(self) -> str:
        active = [k for k in (*_GEOMETRIC_KEYS, *_COLOR_KEYS, "imgfilter", "noise", "cutout") if getattr(self, k) > 0]
        return f"active={active}"

    # -------------------------------------------------------------- sampling
    def _choose(self, value: torch.Tensor, neutral: float, prob: float | torch.Tensor,
                dbg: torch.Tensor | None, at_percentile: Callable[[torch.Tensor], Any]) -> torch.Tensor:
        """Per image (dim 0): keep ``value`` with probability ``prob``, else the neutral (identity) value.

        With a debug percentile ``dbg`` every image gets ``at_percentile(dbg)`` instead (for inspection).
        """
        keep = torch.rand([value.shape[0]] + [1] * (value.ndim - 1), device=value.device) < prob
        value = torch.where(keep, value, torch.full_like(value, neutral))
        if dbg is not None:
            value = torch.zeros_like(value) + at_percentile(dbg)
        return value

    def _geometric_matrix(self, n: int, width: int, height: int, device: torch.device,
                          dbg: torch.Tensor | None) -> torch.Tensor:
        """Inverse transform G_inv [n, 3, 3] mapping output pixel coordinates to input ones."""
        pi, p = math.pi, self.p
        rand = torch.rand
        g = M.identity(3, n, device)
        if self.xflip > 0:
            i = self._choose(torch.floor(rand([n], device=device) * 2), 0, self.xflip * p, dbg, _choice_at(2))
            g = g @ M.scale2d(1 - 2 * i, torch.ones_like(i))
        if self.rotate90 > 0:
            i = self._choose(torch.floor(rand([n], device=device) * 4), 0, self.rotate90 * p, dbg, _choice_at(4))
            g = g @ M.rotate2d(pi / 2 * i)
        if self.xint > 0:
            t = self._choose((rand([n, 2], device=device) * 2 - 1) * self.xint_max, 0, self.xint * p, dbg,
                             _uniform_at(self.xint_max))
            g = g @ M.translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height))
        if self.scale > 0:
            s = self._choose(torch.exp2(torch.randn([n], device=device) * self.scale_std), 1, self.scale * p, dbg,
                             _log2normal_at(self.scale_std))
            g = g @ M.scale2d(1 / s, 1 / s)
        # Rotation is split into a pre- and a post-rotation around the anisotropic scaling, each with
        # probability p_rot, so that P(pre or post) = rotate * p.
        p_rot = 1 - torch.sqrt((1 - self.rotate * p).clamp(0, 1))
        if self.rotate > 0:
            theta = self._choose((rand([n], device=device) * 2 - 1) * pi * self.rotate_max, 0, p_rot, dbg,
                                 _uniform_at(pi * self.rotate_max))
            g = g @ M.rotate2d(theta)
        if self.aniso > 0:
            s = self._choose(torch.exp2(torch.randn([n], device=device) * self.aniso_std), 1, self.aniso * p, dbg,
                             _log2normal_at(self.aniso_std))
            g = g @ M.scale2d(1 / s, s)
        if self.rotate > 0:
            theta = self._choose((rand([n], device=device) * 2 - 1) * pi * self.rotate_max, 0, p_rot, dbg,
                                 lambda q: 0)
            g = g @ M.rotate2d(theta)
        if self.xfrac > 0:
            t = self._choose(torch.randn([n, 2], device=device) * self.xfrac_std, 0, self.xfrac * p, dbg,
                             _normal_at(self.xfrac_std))
            g = g @ M.translate2d(-t[:, 0] * width, -t[:, 1] * height)
        return g

    def _color_matrix(self, n: int, channels: int, device: torch.device, dbg: torch.Tensor | None) -> torch.Tensor:
        """Colour transform C [n, 4, 4] acting on (r, g, b, 1)."""
        p = self.p
        c = M.identity(4, n, device)
        if self.brightness > 0:
            b = self._choose(torch.randn([n], device=device) * self.brightness_std, 0, self.brightness * p, dbg,
                             _normal_at(self.brightness_std))
            c = M.translate3d(b) @ c
        if self.contrast > 0:
            s = self._choose(torch.exp2(torch.randn([n], device=device) * self.contrast_std), 1, self.contrast * p,
                             dbg, _log2normal_at(self.contrast_std))
            c = M.scale3d(s) @ c
        if self.lumaflip > 0:
            i = self._choose(torch.floor(torch.rand([n], device=device) * 2), 0, self.lumaflip * p, dbg,
                             _choice_at(2))
            c = M.reflect_luma(i) @ c
        if self.hue > 0 and channels > 1:
            theta = self._choose((torch.rand([n], device=device) * 2 - 1) * math.pi * self.hue_max, 0,
                                 self.hue * p, dbg, _uniform_at(math.pi * self.hue_max))
            c = M.rotate_around_luma(theta) @ c
        if self.saturation > 0 and channels > 1:
            s = self._choose(torch.exp2(torch.randn([n], device=device) * self.saturation_std), 1,
                             self.saturation * p, dbg, _log2normal_at(self.saturation_std))
            c = M.scale_saturation(s) @ c
        return c

    # -------------------------------------------------------------- execution
    def _resample(self, images: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
        """Apply the inverse transforms ``g_inv`` [N, 3, 3] (centred pixel units) with wavelet-filtered resampling."""
        n, ch, height, width = images.shape
        device = images.device
        tap_margin = self.Hz_geom.shape[0] // 4  # filter support at input resolution, per side

        # Reflect-pad just enough that every output pixel (plus the filter support) samples real content.
        cx, cy = (width - 1) / 2, (height - 1) / 2
        corners = torch.tensor([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1, 1, 1, 1]], device=device)
        src = (g_inv @ corners)[:, :2, :].permute(1, 0, 2).flatten(1)  # [xy, n * 4] source of each corner
        extent = torch.cat([-src, src]).amax(dim=1)  # furthest reach on the -x, -y, +x, +y sides
        extent = extent + torch.tensor([2 * tap_margin - cx, 2 * tap_margin - cy] * 2, device=device)
        upper = torch.tensor([width - 1, height - 1] * 2, device=device, dtype=extent.dtype)
        identity = (g_inv == torch.eye(3, device=device)).all()
        # One device->host transfer for both (the padding must be known on the host anyway).
        mx0, my0, mx1, my1, skip = torch.cat([extent.clamp(min=0).minimum(upper).ceil(), identity[None]]).tolist()
        if skip:  # no image is transformed (e.g. p = 0): the resampling would only add rounding noise
            return images
        mx0, my0, mx1, my1 = int(mx0), int(my0), int(mx1), int(my1)
        images = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
        g_inv = M.constant2d([[1, 0, (mx0 - mx1) / 2], [0, 1, (my0 - my1) / 2], [0, 0, 1]], device) @ g_inv

        # Work at 2x resolution: the orthogonal wavelet makes up- followed by down-sampling lossless.
        images = upfirdn2d.upsample2d(images, self.Hz_geom, up=2)
        to_up = M.constant2d([[2, 0, -0.5], [0, 2, -0.5], [0, 0, 1]], device)      # x_up = 2 x - 0.5
        from_up = M.constant2d([[0.5, 0, 0.25], [0, 0.5, 0.25], [0, 0, 1]], device)
        g_inv = to_up @ g_inv @ from_up

        # Output covers the image plus the downsampling filter margin; grid_sample uses [-1, 1] units.
        out_h, out_w = (height + 2 * tap_margin) * 2, (width + 2 * tap_margin) * 2
        in_h, in_w = images.shape[2], images.shape[3]
        to_norm = M.constant2d([[2 / in_w, 0, 0], [0, 2 / in_h, 0], [0, 0, 1]], device)
        from_norm = M.constant2d([[out_w / 2, 0, 0], [0, out_h / 2, 0], [0, 0, 1]], device)
        g_inv = to_norm @ g_inv @ from_norm
        grid = F.affine_grid(g_inv[:, :2, :].to(images.dtype), [n, ch, out_h, out_w], align_corners=False)
        images = grid_sample(images, grid)
        return upfirdn2d.downsample2d(images, self.Hz_geom, down=2, padding=-2 * tap_margin, flip_filter=True)

    @staticmethod
    def _apply_color(images: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        n, ch, height, width = images.shape
        flat = images.reshape(n, ch, height * width)
        c = c.to(images.dtype)
        if ch == 3:
            flat = c[:, :3, :3] @ flat + c[:, :3, 3:]
        elif ch == 1:  # grey: the average of the RGB rows acting on (g, g, g, 1)
            row = c[:, :3, :].mean(dim=1, keepdim=True)
            flat = flat * row[:, :, :3].sum(dim=2, keepdim=True) + row[:, :, 3:]
        else:
            raise ValueError(f"colour augmentation needs RGB (3 channels) or grey (1 channel) images, "
                             f"got {ch} channels")
        return flat.reshape(n, ch, height, width)

    def _filter_bands(self, images: torch.Tensor, dbg: torch.Tensor | None) -> torch.Tensor:
        """Random per-octave gain (power-normalised), applied as a separable zero-phase filter."""
        n, ch, height, width = images.shape
        device = images.device
        num_bands, taps = self.Hz_fbank.shape
        if len(self.imgfilter_bands) != num_bands:
            raise ValueError(f"imgfilter_bands needs {num_bands} entries, got {len(self.imgfilter_bands)}")
        half = taps // 2
        if min(height, width) <= half:
            raise ValueError(f"image-space filtering needs images larger than {half} pixels, got {height}x{width}")
        expected_power = torch.tensor([10.0, 1, 1, 1], device=device) / 13  # roughly a 1/f spectrum
        gains = torch.ones([n, num_bands], device=device)
        for band, strength in enumerate(self.imgfilter_bands):
            t_band = self._choose(torch.exp2(torch.randn([n], device=device) * self.imgfilter_std), 1,
                                  self.imgfilter * self.p * strength, dbg,
                                  _log2normal_at(self.imgfilter_std) if strength > 0 else (lambda q: 1))
            t = torch.ones([n, num_bands], device=device)
            t[:, band] = t_band
            gains = gains * t / (expected_power * t.square()).sum(dim=-1, keepdim=True).sqrt()
        kernel = (gains @ self.Hz_fbank).to(images.dtype)  # [n, taps]
        kernel = kernel.repeat_interleave(ch, dim=0)[:, None, None, :]  # [n * ch, 1, 1, taps]
        x = F.pad(images.reshape(1, n * ch, height, width), [half] * 4, mode="reflect")
        x = F.conv2d(x, kernel, groups=n * ch)
        x = F.conv2d(x, kernel.transpose(2, 3), groups=n * ch)
        return x.reshape(n, ch, height, width)

    def _add_noise(self, images: torch.Tensor, dbg: torch.Tensor | None) -> torch.Tensor:
        n = images.shape[0]
        sigma = self._choose(torch.randn([n, 1, 1, 1], device=images.device).abs() * self.noise_std, 0,
                             self.noise * self.p, dbg, lambda q: torch.erfinv(q) * self.noise_std)
        return images + torch.randn_like(images) * sigma.to(images.dtype)

    def _cutout(self, images: torch.Tensor, dbg: torch.Tensor | None) -> torch.Tensor:
        n, _, height, width = images.shape
        device = images.device
        size = self._choose(torch.full([n, 2, 1, 1], self.cutout_size, device=device), 0, self.cutout * self.p,
                            dbg, lambda q: self.cutout_size)
        center = torch.rand([n, 2, 1, 1], device=device)
        if dbg is not None:
            center = torch.zeros_like(center) + dbg
        xs = (torch.arange(width, device=device).reshape(1, 1, -1) + 0.5) / width
        ys = (torch.arange(height, device=device).reshape(1, -1, 1) + 0.5) / height
        outside_x = (xs - center[:, 0]).abs() >= size[:, 0] / 2
        outside_y = (ys - center[:, 1]).abs() >= size[:, 1] / 2
        mask = (outside_x | outside_y).unsqueeze(1).to(images.dtype)
        return images * mask

    # -------------------------------------------------------------- forward
    def forward(self, images: torch.Tensor, debug_percentile: float | None = None) -> torch.Tensor:
        """Augment a batch [N, C, H, W] (values nominally in [-1, 1]); same shape, dtype and device out.

        ``debug_percentile`` in [0, 1] replaces every random parameter by its value at that percentile
        and ignores the probabilities (for visual inspection and tests).
        """
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            got = getattr(images, "shape", type(images).__name__)
            raise ValueError(f"AugmentPipe expects an image tensor [N, C, H, W], got {got}")
        n, ch, height, width = images.shape
        device = images.device
        dbg = None if debug_percentile is None else torch.as_tensor(debug_percentile, dtype=torch.float32,
                                                                    device=device)
        if any(getattr(self, k) > 0 for k in _GEOMETRIC_KEYS):
            images = self._resample(images, self._geometric_matrix(n, width, height, device, dbg))
        if any(getattr(self, k) > 0 for k in _COLOR_KEYS):
            images = self._apply_color(images, self._color_matrix(n, ch, device, dbg))
        if self.imgfilter > 0:
            images = self._filter_bands(images, dbg)
        if self.noise > 0:
            images = self._add_noise(images, dbg)
        if self.cutout > 0:
            images = self._cutout(images, dbg)
        return images


def make_augment_pipe(spec: str, p: float = 0.0, **overrides: float) -> AugmentPipe:
    """Pipe for a named preset of :data:`AUGPIPE_SPECS` with initial strength ``p``."""
    if spec not in AUGPIPE_SPECS:
        raise ValueError(f"unknown augmentation preset {spec!r}; choose one of {', '.join(AUGPIPE_SPECS)}")
    pipe = AugmentPipe(**{**AUGPIPE_SPECS[spec], **overrides})
    pipe.p.fill_(float(p))
    return pipe
