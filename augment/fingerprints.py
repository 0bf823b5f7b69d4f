"""Content fingerprints of images, for near-duplicate detection across splits.

A fingerprint is the grey image (PIL "L") resized to ``GRID``×``GRID`` by area averaging (PIL BOX), as float32;
pairs are screened on its ``COARSE``×``COARSE`` box average: the mean abs difference of box averages never exceeds
the fine one, so the screen loses no pair.
Two images are near-duplicates when their fingerprints are close by either measure:

- mean absolute difference ≤ ``MAX_MEAN_ABS_DIFF`` grey levels (0..255), or
- Pearson correlation ≥ ``MIN_CORRELATION`` (catches brightness/contrast changes; flat images never match by it).

Measured (docs/benchmarks.md): on the real 4Q set (900 mel images, 256 px) the closest pair of different clips is
5.05 grey levels apart and correlated 0.974 at most; the tone-plus-noise clips of the test fixtures 2.3 and 0.975.
Re-saved, JPEG q100 and one-pixel-changed copies, and mel images of clips with gain 0.9, 1e-4 noise or a one-sample
shift, stay below 0.1 / above 0.9999; mirrored copies match through the mirrored fingerprint. Below
``MIN_RESOLUTION`` px different clips look alike (8 px tones: 0.66 apart, correlated 0.9999), so there is no check.
"""
from __future__ import annotations

import io
from typing import Iterator

import numpy as np

GRID = 64                # fingerprint side: fine enough that independent noise on one picture tells copies apart
COARSE = 4               # screening grid: its mean abs difference never exceeds the fine one (box averages)
MIN_RESOLUTION = 16      # smaller images cannot tell clips apart (two 8 px tones differ by < 1 grey level): no check
MAX_MEAN_ABS_DIFF = 1.0
MIN_CORRELATION = 0.995
FLAT_STD = 1.0           # grey levels: below this spread the correlation says nothing
BLOCK_BYTES = 64 * 2 ** 20  # bounds the pairwise buffer
PAIRS_PER_STEP = BLOCK_BYTES // (4 * GRID * GRID)


def fingerprint_image(im: "object") -> np.ndarray:
    """(2, GRID²) float32: the fingerprint of a PIL image and of its horizontal mirror."""
    from PIL import Image

    grey = im.convert("L")  # type: ignore[attr-defined]
    small = grey.resize((GRID, GRID), Image.BOX)
    a = np.asarray(small, dtype=np.float32)
    return np.stack([a.ravel(), a[:, ::-1].ravel()])


def fingerprint_bytes(data: bytes) -> np.ndarray:
    """Fingerprint (and mirror) of an encoded image; raises OSError/ValueError if it cannot be decoded."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return fingerprint_image(im)
    except Image.DecompressionBombError as exc:  # more pixels than PIL's limit: not an image we decode
        raise ValueError(str(exc)) from None


def coarse(f: np.ndarray) -> np.ndarray:
    """[n, GRID²] → [n, COARSE²]: the box average of each fingerprint (its distances bound the fine ones below)."""
    k = GRID // COARSE
    return f.reshape(-1, COARSE, k, COARSE, k).mean(axis=(2, 4)).reshape(-1, COARSE * COARSE)


def _standardise(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to zero mean and unit norm, and a mask of the rows that are not flat."""
    centred = f - f.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(centred, axis=1, keepdims=True)
    ok = (norm[:, 0] / np.sqrt(f.shape[1])) >= FLAT_STD
    return centred / np.where(norm > 0, norm, 1.0), ok


def is_near(mad: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """Boolean mask: which (mean abs difference, correlation) pairs count as near-duplicates."""
    return (mad <= MAX_MEAN_ABS_DIFF) | (corr >= MIN_CORRELATION)


def pairwise_blocks(candidates: np.ndarray, references: np.ndarray, exact: bool = False
                    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(start, mean abs differences, correlations) for blocks of candidate rows against every reference row.

    The fine mean abs difference is computed where the coarse one is within the threshold (or everywhere with
    ``exact``); elsewhere the coarse value, a lower bound that is already above the threshold, stands in.
    """
    zr, ok_r = _standardise(references)
    zc, ok_c = _standardise(candidates)
    cc, cr = coarse(candidates), coarse(references)
    step = max(1, BLOCK_BYTES // (4 * max(1, references.shape[0]) * (GRID * GRID if exact else COARSE * COARSE)))
    for s in range(0, candidates.shape[0], step):
        if exact:
            d = np.abs(candidates[s:s + step, None, :] - references[None, :, :]).mean(axis=2)
        else:
            d = np.abs(cc[s:s + step, None, :] - cr[None, :, :]).mean(axis=2)
            i, j = np.nonzero(d <= MAX_MEAN_ABS_DIFF)
            for k in range(0, i.size, PAIRS_PER_STEP):  # the few pairs that pass the screen, exactly
                a, b = i[k:k + PAIRS_PER_STEP], j[k:k + PAIRS_PER_STEP]
                d[a, b] = np.abs(candidates[s + a] - references[b]).mean(axis=1)
        r = zc[s:s + step] @ zr.T
        r[~ok_c[s:s + step]] = -1.0
        r[:, ~ok_r] = -1.0
        yield s, d, r


def first_matches(candidates: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Per candidate row [n, GRID²]: the index of the first near-duplicate reference row [m, GRID²], or -1."""
    out = np.full(candidates.shape[0], -1, dtype=np.int64)
    if candidates.shape[0] == 0 or references.shape[0] == 0:
        return out
    for s, d, r in pairwise_blocks(candidates, references):
        hit = is_near(d, r)
        out[s:s + hit.shape[0]] = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    return out


def closest(candidates: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate row: the smallest (exact) mean abs difference and the largest correlation to any reference."""
    mad = np.full(candidates.shape[0], np.inf, dtype=np.float32)
    corr = np.full(candidates.shape[0], -1.0, dtype=np.float32)
    if references.shape[0] == 0:
        return mad, corr
    for s, d, r in pairwise_blocks(candidates, references, exact=True):
        mad[s:s + d.shape[0]] = d.min(axis=1)
        corr[s:s + d.shape[0]] = r.max(axis=1)
    return mad, corr


def with_mirrors(fps: np.ndarray) -> np.ndarray:
    """[N, 2, GRID²] (fingerprint, mirror) → [2N, GRID²]: every image and its mirror as reference rows."""
    return np.concatenate([fps[:, 0], fps[:, 1]]) if fps.shape[0] else np.zeros((0, GRID * GRID), np.float32)
