"""Shared fixtures: a prepared demo workspace, trained tiny workspaces, a CLI runner, synthetic audio
files, one torch thread, glibc's default malloc. Builders they use live in tests/support/."""
from __future__ import annotations

import os

# Before torch is imported (OpenMP reads it once): idle OpenMP threads sleep instead of spinning. On the shared 2-core
# machine with one other busy process, torch-heavy tests ran 22% faster (16.0 -> 12.5 s) and without the outliers of
# spinning threads (one full suite took 327 s instead of ~140 s); idle, ~6% slower (docs/benchmarks.md). An explicit
# setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import signal  # noqa: E402

# A suite started in the background by a shell without job control (`make test &` in a script) inherits SIGINT
# ignored; Python then installs no KeyboardInterrupt handler and the children it starts keep ignoring it, so every
# Ctrl-C test would fail for a reason that is not the code's. The tests press Ctrl-C as a user at a terminal does.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

from pathlib import Path  # noqa: E402
from typing import Callable

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner, Result

from augment.workspace import Workspace
from tests.support.audio import tone
from tests.support.threads import one_torch_thread
from tests.support.workspaces import copy_workspace, trained_workspace


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
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def base_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """One trained workspace per test module (classes a, b trained; c not); read-only, tests use ``ws``."""
    return trained_workspace(tmp_path_factory.mktemp("trained") / "ws")


@pytest.fixture()
def ws(base_ws: Workspace, tmp_path: Path) -> Workspace:
    """A private copy of ``base_ws`` that a test may change."""
    return copy_workspace(base_ws, tmp_path / "ws")


@pytest.fixture()
def glibc_default_malloc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """glibc's default mmap/trim settings for this test (an earlier test may have called retain_freed_memory)."""
    from stylegan_ada.ops import cpu_memory

    import numpy as np

    from tests.support.memory import M_MMAP_MAX, M_TRIM_THRESHOLD, glibc, mmapped_bytes_holding

    libc = glibc()
    assert libc.mallopt(M_MMAP_MAX, 65536) and libc.mallopt(M_TRIM_THRESHOLD, 128 * 1024)
    monkeypatch.setattr(cpu_memory, "_done", False)
    # Free heap chunks that earlier tests left behind (with trimming off) would serve a 64 MiB block without mmap
    # even under the defaults; hold them (np.empty touches no pages) until new large blocks are mmapped again.
    hoard = []
    while mmapped_bytes_holding() < 64 << 20:  # the defaults really are back once this holds
        assert len(hoard) < 512, "glibc keeps serving 64 MiB blocks from its heap under the default settings"
        hoard.append(np.empty(64 << 20, dtype=np.uint8))
    yield
    del hoard
