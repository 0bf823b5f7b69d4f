"""Helpers for generation/novelty tests: tiny generators saved as run snapshots in a test workspace."""
from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest
import torch

from augment.workspace import Workspace
from helpers import make_image_workspace

RESOLUTION = 32


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


def snapshot_path(ws: Workspace, cls: str | None, run: str = "00000-tiny", tag: str = "000004") -> Path:
    return ws.runs_dir(cls) / run / f"network-snapshot-{tag}.safetensors"


def trained_workspace(root: Path, classes: Sequence[str] = ("a", "b", "c"), trained: Sequence[str] = ("a", "b"),
                      **kwargs: Any) -> Workspace:
    """A test workspace whose ``trained`` classes each have one tiny snapshot under runs/<class>/00000-tiny/."""
    ws = make_image_workspace(root, classes, resolution=RESOLUTION, **kwargs)
    for i, cls in enumerate(trained):
        save_tiny_snapshot(snapshot_path(ws, cls), seed=i, extra={"class": cls, "kimg": 4})
    return ws


# Fixtures shared by the generation test modules (import them there: `from helpers_generate import base_ws, ws`).
@pytest.fixture(scope="module")
def base_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """One trained workspace per test module (classes a, b trained; c not); read-only, tests use ``ws``."""
    return trained_workspace(tmp_path_factory.mktemp("trained") / "ws")


@pytest.fixture()
def ws(base_ws: Workspace, tmp_path: Path) -> Workspace:
    """A private copy of ``base_ws`` that a test may change."""
    shutil.copytree(base_ws.root, tmp_path / "ws")
    return Workspace.load(tmp_path / "ws")


def reference_generator(name: str = "G") -> torch.nn.Module:
    """The fixture's tiny generator ``G`` or conditional ``Gc`` (tiny_kwargs.json, weights from tiny_nets.npz): the
    networks whose outputs the reference's generate.py recipe recorded in generate_io.npz."""
    import json

    import numpy as np

    from helpers import FIXTURES
    from stylegan_ada.networks import Generator

    kwargs = json.loads((FIXTURES / "tiny_kwargs.json").read_text())[name]
    with np.load(FIXTURES / "tiny_nets.npz") as f:
        state = {k[len(name) + 1:]: torch.from_numpy(f[k]) for k in f.files if k.startswith(name + ".")}
    G = Generator(**kwargs)
    G.load_state_dict(state)
    return G.eval()


def save_reference_snapshot(path: Path, name: str = "G", **kwargs: Any) -> Path:
    """Save :func:`reference_generator` ``name`` as a run snapshot (G and G_ema), as training writes it."""
    from stylegan_ada.checkpoint import save_snapshot

    G = reference_generator(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_snapshot(path, G=G, G_ema=copy.deepcopy(G), extra=kwargs.pop("extra", {}), **kwargs)
    return path


# glibc's own accounting of the allocator, to check `retain_freed_memory` by its effect rather than by a mock.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def _libc() -> Any:
    import ctypes
    import ctypes.util

    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def mmapped_bytes_holding(nbytes: int = 64 << 20) -> int:
    """Extra bytes glibc serves from separate mmaps (``mallinfo2().hblkhd``) while an ``nbytes`` array is held: about
    ``nbytes`` with glibc's defaults (blocks above 32 MiB are always mmapped), 0 once the heap serves everything."""
    import ctypes

    import numpy as np

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    mallinfo2 = _libc().mallinfo2
    mallinfo2.restype = Mallinfo2
    before = int(mallinfo2().hblkhd)  # older blocks mmapped before the settings changed stay counted
    held = np.ones(nbytes, dtype=np.uint8)
    try:
        return int(mallinfo2().hblkhd) - before
    finally:
        del held


@pytest.fixture()
def glibc_default_malloc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """glibc's default mmap/trim settings for this test (an earlier test may have called retain_freed_memory)."""
    from stylegan_ada.ops import cpu_memory

    import numpy as np

    libc = _libc()
    assert libc.mallopt(_M_MMAP_MAX, 65536) and libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024)
    monkeypatch.setattr(cpu_memory, "_done", False)
    # Free heap chunks that earlier tests left behind (with trimming off) would serve a 64 MiB block without mmap
    # even under the defaults; hold them (np.empty touches no pages) until new large blocks are mmapped again.
    hoard = []
    while mmapped_bytes_holding() < 64 << 20:  # the defaults really are back once this holds
        assert len(hoard) < 512, "glibc keeps serving 64 MiB blocks from its heap under the default settings"
        hoard.append(np.empty(64 << 20, dtype=np.uint8))
    yield
    del hoard
