"""Counter-based seeds: every random draw of training is a function of (seed, step, phase, round).

The loop re-seeds the global torch generator before each round of each phase, so a step's random numbers (latents,
labels, noise inputs, style mixing, augmentation, path-length noise) do not depend on what ran before it in this
process. Resuming from any step, or splitting the batch over several processes, draws exactly the same numbers.
"""
from __future__ import annotations

import numpy as np
import torch

_MASK63 = (1 << 63) - 1


def derive_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed from a tuple of non-negative integers."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, np.uint32)
    return ((int(state[0]) << 32) | int(state[1])) & _MASK63


def seed_round(seed: int, step: int, phase: int, round_idx: int) -> None:
    """Seed the global torch generators (CPU and every CUDA device) for one round of one phase of one step."""
    torch.manual_seed(derive_seed(seed, 1, step, phase, round_idx))


def generator(seed: int, *keys: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A private torch generator for a purpose named by ``keys`` (data order, image grids, ...)."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *keys))
    return g


# Purpose keys for derive_seed/generator, so that streams never collide.
ROUND, DATA_ORDER, GRID = 1, 2, 3
