"""Wavelet low-pass filters used by the augmentation pipeline.

The geometric transforms resample through a 2x upsampled image with the orthogonal 'sym6' wavelet
filter (up- and downsampling with the same orthogonal filter reconstruct the image exactly when the
transform is the identity). Image-space filtering splits the spectrum into four octave bands built
from the 'sym2' wavelet. Coefficients are the standard Symlet low-pass decomposition filters.
"""
from __future__ import annotations

import numpy as np

SYM2 = (-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025)
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)


def octave_filter_bank(lowpass: tuple[float, ...] = SYM2, num_bands: int = 4) -> np.ndarray:
    """Zero-phase 1D filters [num_bands, taps] that split a signal into octave bands, lowest band first.

    The rows sum to a unit impulse, so all-ones band gains leave an image unchanged.
    """
    lo = np.asarray(lowpass, dtype=np.float64)
    hi = lo * (-1.0) ** np.arange(lo.size)          # mirror filter H(-z)
    lo2 = np.convolve(lo, lo[::-1]) / 2              # half-band low-pass, zero phase
    hi2 = np.convolve(hi, hi[::-1]) / 2              # complementary half-band high-pass
    bank = np.zeros([num_bands, 1])
    bank[0, 0] = 1.0
    for band in range(1, num_bands):
        # Stretch the existing (lower) bands by one octave, then split off the new top band.
        dilated = np.zeros([num_bands, bank.shape[1] * 2 - 1])
        dilated[:, ::2] = bank
        bank = np.stack([np.convolve(row, lo2) for row in dilated])
        start = (bank.shape[1] - hi2.size) // 2
        bank[band, start:start + hi2.size] += hi2
    return bank
