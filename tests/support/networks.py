"""The one builder of tiny networks: the `tiny` preset with seeded random weights, and the fixture networks
(tiny_kwargs.json + tiny_nets.npz, the ones the reference's recorded outputs come from); saved as run snapshots."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tests.support.paths import FIXTURES
from tests.support.workspaces import RESOLUTION


def tiny_generator(*, c_dim: int = 0, seed: int = 0, resolution: int = RESOLUTION) -> torch.nn.Module:
    """The `tiny` preset's generator with random weights (seeded)."""
    from stylegan_ada import presets
    from stylegan_ada.networks import Generator

    kwargs = copy.deepcopy(presets.resolve("tiny", resolution)["G_kwargs"])
    kwargs["c_dim"] = c_dim
    torch.manual_seed(seed)
    return Generator(**kwargs).eval()


def save_tiny_snapshot(path: Path, *, c_dim: int = 0, seed: int = 0, resolution: int = RESOLUTION,
                       extra: dict[str, Any] | None = None,
                       training_set_kwargs: dict[str, Any] | None = None) -> Path:
    from stylegan_ada.checkpoint import save_snapshot

    G = tiny_generator(c_dim=c_dim, seed=seed, resolution=resolution)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_snapshot(path, G=G, G_ema=copy.deepcopy(G), extra=extra or {}, training_set_kwargs=training_set_kwargs)
    return path


def fixture_network(name: str = "G") -> torch.nn.Module:
    """Fixture network ``name`` (G, D, or the conditional Gc, Dc) built from tiny_kwargs.json with the weights in
    tiny_nets.npz, in eval mode."""
    from stylegan_ada.networks import Discriminator, Generator

    kwargs = json.loads((FIXTURES / "tiny_kwargs.json").read_text())[name]
    with np.load(FIXTURES / "tiny_nets.npz") as f:
        state = {k[len(name) + 1:]: torch.from_numpy(f[k]) for k in f.files if k.startswith(name + ".")}
    module = (Generator if name.startswith("G") else Discriminator)(**kwargs)
    module.load_state_dict(state)
    return module.eval()


def tiny_networks() -> dict[str, torch.nn.Module]:
    """G, D, G_ema of the fixture (G_ema a separate copy of G)."""
    return {"G": fixture_network("G"), "D": fixture_network("D"), "G_ema": fixture_network("G")}


def save_reference_snapshot(path: Path, name: str = "G", **kwargs: Any) -> Path:
    """Save :func:`fixture_network` ``name`` as a run snapshot (G and G_ema), as training writes it."""
    from stylegan_ada.checkpoint import save_snapshot

    G = fixture_network(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_snapshot(path, G=G, G_ema=copy.deepcopy(G), extra=kwargs.pop("extra", {}), **kwargs)
    return path
