"""Build, cache and load our CUDA kernels (`stylegan_ada/ops/csrc`) on first use.

`load()` returns the compiled extension module (one module serves every op) or None, with ONE warning per
process, when CUDA is absent or the build fails; it never raises. `build()` is the raising variant used by
`tools/check_cuda_ops.py`. Builds go to a per-user cache (``$STYLEGAN_ADA_EXTENSIONS_DIR``, else
``$XDG_CACHE_HOME/stylegan_ada/torch_extensions``, else ``~/.cache/...``) under a key made of the source contents,
the torch/CUDA/Python versions and the target GPU architectures, so a second process loads in well under a second.

This module only builds and loads; it imports none of the ops. The autograd glue over the kernels lives beside each
op (`bias_act_cuda.py`, `upfirdn2d_cuda.py`), and `_dispatch.use_cuda` decides when it is used.
"""
from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import threading
import warnings
from pathlib import Path
from types import ModuleType

import torch

CSRC_DIR = Path(__file__).resolve().with_name("csrc")
SOURCES = ("ops_bindings.cpp", "bias_act_kernel.cu", "upfirdn2d_kernel.cu")
HEADERS = ("ops_kernels.h", "ops_device.cuh")
CACHE_ENV = "STYLEGAN_ADA_EXTENSIONS_DIR"
EXTRA_CFLAGS = ("-O3",)
EXTRA_CUDA_CFLAGS = ("-O3",)  # no --use_fast_math: results must match the reference path to ~1e-6


class BuildError(RuntimeError):
    """The extension cannot be built or loaded here; the message says why in one line."""


def cache_root() -> Path:
    """Directory that holds one sub-directory per build key."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stylegan_ada" / "torch_extensions"


def target_archs() -> str:
    """GPU architectures to compile for: $TORCH_CUDA_ARCH_LIST, else those of the visible devices ('' if none)."""
    explicit = os.environ.get("TORCH_CUDA_ARCH_LIST", "").strip()
    if explicit and explicit != "native":
        return explicit
    if not torch.cuda.is_available():
        return ""
    caps = {torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())}
    return ";".join(f"{major}.{minor}" for major, minor in sorted(caps))


def build_key(archs: str) -> str:
    """Hex digest of everything that makes a compiled extension reusable."""
    digest = hashlib.sha256()
    for name in SOURCES + HEADERS:
        digest.update(name.encode() + b"\0" + (CSRC_DIR / name).read_bytes() + b"\0")
    env = [torch.__version__, str(torch.version.cuda), platform.python_version(), platform.machine(), archs,
           " ".join(EXTRA_CFLAGS + EXTRA_CUDA_CFLAGS)]
    digest.update("\n".join(env).encode())
    return digest.hexdigest()


def extension_location(archs: str) -> tuple[str, Path]:
    """(module name, build directory) of the extension for `archs`."""
    name = f"stylegan_ada_ops_{build_key(archs)[:16]}"
    return name, cache_root() / name


def _find_cuda_home(cpp_extension: ModuleType) -> str:
    """A CUDA toolkit root holding both bin/nvcc and include/cuda_runtime.h.

    torch guesses the root as the parent of the `nvcc` on PATH, which is wrong when that is a wrapper script
    (e.g. /usr/local/bin/nvcc); we check the candidates and tell torch the one that works.
    """
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), cpp_extension.CUDA_HOME]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(str(Path(nvcc).resolve().parent.parent))
    candidates.append("/usr/local/cuda")
    for root in candidates:
        if root and (Path(root) / "bin" / "nvcc").exists() and (Path(root) / "include" / "cuda_runtime.h").exists():
            cpp_extension.CUDA_HOME = root  # read by torch's build helpers at call time
            return root
    raise BuildError("no CUDA toolkit found (need bin/nvcc and include/cuda_runtime.h); install the toolkit "
                     f"matching torch's CUDA {torch.version.cuda} or set CUDA_HOME")


def _ensure_ninja() -> None:
    """Put the `ninja` binary of the pip package on PATH when the venv's bin directory is not on it."""
    if shutil.which("ninja"):
        return
    dirs = [str(Path(sys.executable).parent)]
    try:
        import ninja  # the pip package ships the binary
        dirs.insert(0, str(ninja.BIN_DIR))
    except ImportError:
        pass
    os.environ["PATH"] = os.pathsep.join(dirs + [os.environ.get("PATH", "")])
    if not shutil.which("ninja"):
        raise BuildError("ninja is not installed; run `pip install ninja`")


def _stage_sources(src_dir: Path) -> list[str]:
    """Copy the sources into the build directory once, so edits to the package never trigger rebuilds there."""
    src_dir.mkdir(parents=True, exist_ok=True)
    for name in SOURCES + HEADERS:
        target = src_dir / name
        if not target.exists():
            tmp = src_dir / f".{name}.{os.getpid()}.tmp"
            shutil.copyfile(CSRC_DIR / name, tmp)
            os.replace(tmp, target)  # concurrent builders write identical content
    return [str(src_dir / name) for name in SOURCES]


def _failure_summary(message: str) -> str:
    """The most telling line of a compiler/ninja error dump."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() and "Error building extension" not in line:
            return line[:300]
    return lines[0][:300] if lines else "unknown error"


_built: dict[str, ModuleType] = {}  # loaded in this process, by extension name


def build(verbose: bool = False) -> ModuleType:
    """Compile the extension (or load it from the cache) and return it; raises BuildError with the reason.

    A first compile takes one to three minutes; it is announced on stderr so a waiting user knows why.
    """
    if torch.version.cuda is None:
        raise BuildError(f"this torch build ({torch.__version__}) has no CUDA support")
    archs = target_archs()
    if not archs:
        raise BuildError("no CUDA device is visible and TORCH_CUDA_ARCH_LIST is not set (e.g. '8.6' or '9.0')")
    from torch.utils import cpp_extension  # heavy; imported only when a build is really wanted

    _find_cuda_home(cpp_extension)
    _ensure_ninja()
    name, build_dir = extension_location(archs)
    if name in _built:
        return _built[name]
    fresh = not (build_dir / f"{name}.so").exists()
    if fresh and not verbose:
        print(f"stylegan_ada: compiling CUDA ops for arch {archs} (first use, 1-3 min; cached in {build_dir})",
              file=sys.stderr, flush=True)
    try:
        sources = _stage_sources(build_dir / "src")
    except OSError as exc:
        raise BuildError(f"cannot write the extension cache {build_dir}: {exc}") from exc
    old_archs = os.environ.get("TORCH_CUDA_ARCH_LIST")
    os.environ["TORCH_CUDA_ARCH_LIST"] = archs
    try:
        module = cpp_extension.load(name=name, sources=sources, build_directory=str(build_dir),
                                    extra_cflags=list(EXTRA_CFLAGS), extra_cuda_cflags=list(EXTRA_CUDA_CFLAGS),
                                    verbose=verbose)
    except Exception as exc:  # compiler errors arrive as RuntimeError, loader errors as ImportError/OSError
        log = build_dir / "build.log"
        try:
            log.write_text(f"{type(exc).__name__}: {exc}\n")
        except OSError:
            log = None
        where = f" (details: {log})" if log else ""
        raise BuildError(f"build failed: {_failure_summary(str(exc))}{where}") from exc
    finally:
        if old_archs is None:
            os.environ.pop("TORCH_CUDA_ARCH_LIST", None)
        else:
            os.environ["TORCH_CUDA_ARCH_LIST"] = old_archs
    _built[name] = module
    return module


class _Loader:
    """Process-wide state: built module or the reason it is unavailable; warns exactly once."""

    def __init__(self) -> None:
        self.module: ModuleType | None = None
        self.error: str | None = None
        self._lock = threading.Lock()

    def get(self) -> ModuleType | None:
        with self._lock:
            if self.module is None and self.error is None:
                try:
                    if not torch.cuda.is_available():
                        raise BuildError("no CUDA device is available")
                    self.module = build()
                except Exception as exc:  # never crash the caller: fall back to the reference path
                    text = str(exc) if isinstance(exc, BuildError) else f"{type(exc).__name__}: {exc}"
                    self.error = (text.strip().splitlines() or ["unknown error"])[0]
                    warnings.warn(f"stylegan_ada: CUDA ops unavailable ({self.error}); using the slower reference "
                                  "path. Set STYLEGAN_ADA_OPS=ref to silence this.", RuntimeWarning, stacklevel=4)
            return self.module


_loader = _Loader()


def load() -> ModuleType | None:
    """The compiled extension (entry points `bias_act` and `upfirdn2d`), or None if it is unavailable here."""
    return _loader.get()


def last_error() -> str | None:
    """Why `load()` returned None (one line), or None if it has not failed."""
    return _loader.error
