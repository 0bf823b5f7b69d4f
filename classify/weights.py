"""ImageNet weights for the torchvision architectures, read only from the local torch cache; the MusiCNN wheel.

We never download behind the user's back: the weights must already sit where torchvision's weights API
puts them (``$TORCH_HOME/hub/checkpoints/<file>``). When they are missing, one clear message says how to get
them, and ``--pretrained none`` is the explicit alternative.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from augment.errors import UserError
from augment.io_utils import sha256_file

# Thesis-era ImageNet weights (what torchvision's legacy ``pretrained=True`` loaded).
TORCHVISION_WEIGHTS = {
    "resnext101_32x8d": "ResNeXt101_32X8D_Weights",
    "alexnet": "AlexNet_Weights",
    "vgg16_bn": "VGG16_BN_Weights",
    "squeezenet1_0": "SqueezeNet1_0_Weights",
    "densenet121": "DenseNet121_Weights",
    "inception_v3": "Inception_V3_Weights",
}
WEIGHTS_TAG = "IMAGENET1K_V1"
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")
# Old DenseNet checkpoints name layers 'norm.1' etc.; torchvision renames them on load the same way.
_DENSENET_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def weights_enum(arch: str) -> Any:
    """The torchvision weights entry (``<Arch>_Weights.IMAGENET1K_V1``) for ``arch``."""
    import torchvision.models as tvm

    return getattr(getattr(tvm, TORCHVISION_WEIGHTS[arch]), WEIGHTS_TAG)


def cache_path(arch: str) -> Path:
    """Where torchvision's weights API keeps the file for ``arch`` (honours $TORCH_HOME)."""
    import torch.hub

    url = weights_enum(arch).url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def is_cached(arch: str) -> bool:
    return arch in TORCHVISION_WEIGHTS and cache_path(arch).is_file()


def missing_weights_message(arch: str) -> str:
    """The one message a user sees when ImageNet weights for ``arch`` are not in the local cache."""
    enum = weights_enum(arch)
    path = cache_path(arch)
    return (f"ImageNet weights for {arch} are not in the local torch cache ({path}); on a machine with internet run "
            f"`python -c \"import torchvision.models as m; m.{arch}(weights=m.{type(enum).__name__}.{WEIGHTS_TAG})\"` "
            f"(or download {enum.url} to that path; set TORCH_HOME to use another cache), "
            "or pass `--pretrained none` to train from random initialisation")


def missing_weights_message_many(archs: list[str]) -> str:
    """One message for several architectures whose ImageNet weights are missing (one alone: the detailed one)."""
    if len(archs) == 1:
        return missing_weights_message(archs[0])
    folder = cache_path(archs[0]).parent
    files = ", ".join(cache_path(a).name for a in archs)
    return (f"ImageNet weights for {', '.join(archs)} are not in the local torch cache ({folder}: {files} missing); "
            "on a machine with internet run `python -c \"import torchvision.models as m; m.<arch>(weights="
            "'IMAGENET1K_V1')\"` for each and copy the files there (set TORCH_HOME to use another cache), "
            "or pass `--pretrained none` to train from random initialisation")


def load_cached_state_dict(arch: str) -> dict[str, Any]:
    """State dict of the cached ImageNet weights for ``arch``; UserError when absent or unreadable.

    Loaded with ``weights_only=True`` (no code from the file runs). The hash prefix in the file name is checked;
    a mismatch is a warning (the strict key/shape match when loading is the hard check).
    """
    import torch

    path = cache_path(arch)
    if not path.is_file():
        raise UserError(missing_weights_message(arch))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise UserError(f"cached weights {path} are unreadable ({type(exc).__name__}); delete the file and fetch it "
                        "again, or pass `--pretrained none`") from exc
    if not isinstance(state, dict):
        raise UserError(f"cached weights {path} do not hold a state dict; delete the file and fetch it again")
    m = _HASH_IN_NAME.search(path.name)
    if m and not sha256_file(path).startswith(m.group(1)):
        warnings.warn(f"{path.name}: content hash does not match the prefix {m.group(1)} in its name; "
                      "these may not be the official ImageNet weights", stacklevel=2)
    if arch == "densenet121":
        state = {_rename_densenet_key(k): v for k, v in state.items()}
    return state


def _rename_densenet_key(key: str) -> str:
    m = _DENSENET_OLD_KEY.match(key)
    return m.group(1) + m.group(2) if m else key


def load_strict(model: Any, state: dict[str, Any], what: str) -> None:
    """Load ``state`` into ``model`` requiring every key to match with equal shapes; UserError otherwise."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shape = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or bad_shape:
        def head(keys: list[str]) -> str:
            return ", ".join(keys[:3]) + (" ..." if len(keys) > 3 else "")
        raise UserError(f"{what} do not fit the model: {len(missing)} missing ({head(missing)}), "
                        f"{len(unexpected)} unexpected ({head(unexpected)}), {len(bad_shape)} with other shapes "
                        f"({head(bad_shape)}); delete the file and fetch it again")
    model.load_state_dict(state, strict=True)


# ------------------------------------------------------------------ MusiCNN: the musicnn 0.1.0 wheel
PIP_TIMEOUT_S = 600


def _musicnn_hint() -> str:
    from stylegan_ada.musicnn.weights import WHEEL_FILENAME, fetch_command

    return (f"on a machine with internet run `{fetch_command(Path('DIR'))}`, then "
            f"`classify weights fetch musicnn --from DIR/{WHEEL_FILENAME}`")


def _install_wheel(src: Path, dest: Path) -> Path:
    """Verify ``src`` is the musicnn wheel and copy it atomically to ``dest`` (unless it is ``dest``)."""
    from stylegan_ada.fileio import atomic_copy_stream
    from stylegan_ada.musicnn.weights import WeightsError, verify_wheel

    try:
        verify_wheel(src)
    except WeightsError as exc:
        raise UserError(str(exc)) from None
    if dest.exists() and dest.resolve() == src.resolve():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as fh:
        atomic_copy_stream(fh, dest)
    return dest


def fetch_musicnn(from_file: str | Path | None = None) -> tuple[Path, str]:
    """Put the musicnn wheel into the cache; (path, how). From ``from_file``, else already cached, else
    ``pip download`` (the package registry); offline: UserError with the commands to run elsewhere."""
    import subprocess
    import sys
    import tempfile

    from stylegan_ada.musicnn.weights import WHEEL_FILENAME, WHEEL_VERSION, WeightsError, verify_wheel
    from stylegan_ada.pretrained import cache_dir

    dest = cache_dir() / WHEEL_FILENAME
    if from_file is not None:
        src = Path(from_file)
        if not src.is_file():
            raise UserError(f"--from {src}: no such file; {_musicnn_hint()}")
        return _install_wheel(src, dest), f"copied from {src}"
    if dest.is_file():
        try:
            verify_wheel(dest)
        except WeightsError as exc:
            raise UserError(f"{exc} (cached file)") from None
        return dest, "already cached"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".musicnn-download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "--quiet", f"musicnn=={WHEEL_VERSION}", "-d", tmp]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
            failed = proc.returncode != 0 or not (Path(tmp) / WHEEL_FILENAME).is_file()
            reason = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1][:200]
        except (OSError, subprocess.TimeoutExpired) as exc:
            failed, reason = True, f"{type(exc).__name__}: {exc}"[:200]
        if failed:
            raise UserError(f"could not download the musicnn {WHEEL_VERSION} wheel from the package registry "
                            f"({reason}); {_musicnn_hint()}")
        return _install_wheel(Path(tmp) / WHEEL_FILENAME, dest), "downloaded with pip"


__all__ = ["TORCHVISION_WEIGHTS", "WEIGHTS_TAG", "cache_path", "fetch_musicnn", "is_cached", "load_cached_state_dict",
           "load_strict", "missing_weights_message", "missing_weights_message_many", "weights_enum"]
