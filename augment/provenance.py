"""What produced an output: code version, environment, config, seeds, data hashes."""
from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from augment import __version__
from augment.io_utils import atomic_write_json

_REPO_ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus git commit (and ``-dirty``) when running from a checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(_REPO_ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True, text=True, timeout=5, check=False,
        )
        rev = out.stdout.strip()
        if out.returncode == 0 and rev:
            return f"{__version__}+g{rev}"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


def environment() -> dict[str, Any]:
    """Versions of the things that change numbers.

    torch (and CUDA) are reported only when this process has imported torch already: a run that never imports it
    (e.g. `augment prepare`) does not depend on it, and importing it just to report it costs ~2 s.
    """
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": platform.node(),
    }
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "cuda"):  # hasattr: not a half-initialised module
        env["torch"] = torch.__version__
        env["cuda"] = torch.version.cuda
        env["cuda_available"] = torch.cuda.is_available()
        # CPU float sums depend on how many threads split them: the same seed on 1 and on 2 threads differs
        env["torch_threads"] = torch.get_num_threads()
        if env["cuda_available"]:
            env["gpu"] = torch.cuda.get_device_name(0)
    try:
        import numpy  # cheap, and every command uses it

        env["numpy"] = numpy.__version__
    except ImportError:  # pragma: no cover
        pass
    return env


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def run_record(config: dict[str, Any], *, seeds: dict[str, Any] | None = None,
               data_hashes: dict[str, Any] | None = None, command: list[str] | None = None) -> dict[str, Any]:
    """Everything needed to reproduce a run, as one JSON-able dict."""
    return {
        "code_version": code_version(),
        "created": now_iso(),
        "command": command if command is not None else list(sys.argv),
        "cwd": os.getcwd(),
        "config": config,
        "seeds": seeds or {},
        "data_hashes": data_hashes or {},
        "environment": environment(),
    }


def write_run_record(path: str | os.PathLike, config: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    rec = run_record(config, **kwargs)
    atomic_write_json(path, rec)
    return rec
