"""Shared fixtures: a prepared demo workspace, a CLI runner, and synthetic audio files."""
from __future__ import annotations

import os

# Before torch is imported (OpenMP reads it once): idle OpenMP threads sleep instead of spinning. On the shared 2-core
# machine with one other busy process, torch-heavy tests ran 22% faster (16.0 -> 12.5 s) and without the outliers of
# spinning threads (one full suite took 327 s instead of ~140 s); idle, ~6% slower (docs/benchmarks.md). An explicit
# setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path  # noqa: E402
from typing import Callable

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner, Result

from augment.workspace import Workspace


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The `augment demo` dataset (4 classes × 16 synthesized clips; 9 train, 3 val, 4 test each) prepared at 32 px.

    Shared by the whole session: treat it as read-only (copy it to modify it).
    """
    from augment.commands.demo import prepare_demo, synthesize_audio

    root = tmp_path_factory.mktemp("demo-workspace")
    options = {"resolution": 32, "jobs": 1, "seed": 0, "force": False}
    synthesize_audio(root, options)
    prepare_demo(root, options)
    return Workspace.load(root)


@pytest.fixture()
def augment_cli() -> Callable[..., Result]:
    """Run ``augment ARGS...`` in-process; returns click's Result (exit_code, stdout, stderr, output)."""
    from augment.cli import cli

    def run(*args: str | Path) -> Result:
        return CliRunner().invoke(cli, [str(a) for a in args])

    return run


def tone(seconds: float, sr: int, *, freq: float = 440.0, seed: int = 0, channels: int = 1,
         noise: float = 0.05) -> np.ndarray:
    """A seeded tone plus noise, (n,) or (n, channels); distinct seeds give distinct bytes."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    y = 0.5 * np.sin(2 * np.pi * freq * t) + noise * rng.standard_normal(t.size)
    if channels == 1:
        return y.astype(np.float32)
    return np.stack([y * (0.5 + 0.5 * c / channels) for c in range(channels)], axis=1).astype(np.float32)


@pytest.fixture()
def write_wav() -> Callable[..., Path]:
    """write_wav(path, seconds=1.0, sr=8000, freq=440, seed=0, channels=1) → path (16-bit PCM WAV)."""

    def write(path: Path, seconds: float = 1.0, sr: int = 8000, *, freq: float = 440.0, seed: int = 0,
              channels: int = 1) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, tone(seconds, sr, freq=freq, seed=seed, channels=channels), sr, subtype="PCM_16")
        return path

    return write


@pytest.fixture()
def audio_folder(tmp_path: Path, write_wav: Callable[..., Path]) -> Callable[..., Path]:
    """audio_folder(counts={'a': 6, 'b': 6}, seconds=0.5) → a folder dataset root with distinct clips per class."""

    def make(counts: dict[str, int] | None = None, seconds: float = 0.5, name: str = "audio") -> Path:
        root = tmp_path / name
        for ci, (cls, n) in enumerate((counts or {"a": 6, "b": 6}).items()):
            for k in range(n):
                write_wav(root / cls / f"{cls}{k:02d}.wav", seconds, freq=220.0 * (ci + 1), seed=100 * ci + k)
        return root

    return make


@pytest.fixture(name="one_torch_thread")
def one_torch_thread_fixture():
    """Tiny tensors: one torch thread is as fast, and immune to an oversubscribed CPU."""
    from helpers import one_torch_thread

    with one_torch_thread():
        yield
