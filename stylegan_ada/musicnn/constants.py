"""MusiCNN's input settings and what an ``augment prepare --preset musicnn`` image pixel means (no torch import)."""
from __future__ import annotations

SR = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
N_FRAMES = 187                  # frames per patch (3 s)
LOG_SCALE = 10000.0             # input = log10(1 + LOG_SCALE * mel power)
# Images: dB relative to a fixed power, not the clip's peak, so a pixel maps back to an absolute mel power.
# 100 dB below 1000 is 1e-7, where the input is 0.0004; louder cells than 1000 (rare in music) clip at white.
IMAGE_TOP_DB = 100.0
IMAGE_REF_POWER = 1000.0
IMAGE_PATCHES = 3
IMAGE_SECONDS = (IMAGE_PATCHES * N_FRAMES - 1) * HOP / SR   # 8.96 s: exactly 561 centred frames
IMAGE_MEL_FRAMES = IMAGE_PATCHES * N_FRAMES
