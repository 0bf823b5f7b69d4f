"""The pretrained MusiCNN / VGG weights: the checkpoints inside the ``musicnn`` 0.1.0 wheel (ISC licence), mapped
onto our modules. The wheel is a zip; it is verified by its sha256 and read in place (nothing is extracted, no
TensorFlow, nothing from it is executed: even the tag names are read as literals).
"""
from __future__ import annotations

import ast
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import torch

from stylegan_ada.fileio import sha256_file
from stylegan_ada.musicnn.networks import MusiCNN, VGGish
from stylegan_ada.musicnn.tf_checkpoint import Checkpoint, CheckpointError, open_checkpoint_in_zip

__all__ = ["MODELS", "WHEEL_FILENAME", "WHEEL_SHA256", "WHEEL_VERSION", "WeightsError", "WeightsMissing",
           "find_wheel", "fetch_command", "verify_wheel", "load_musicnn", "load_labels", "state_dict_from_checkpoint"]

WHEEL_VERSION = "0.1.0"
WHEEL_FILENAME = f"musicnn-{WHEEL_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
MODELS = {"MTT_musicnn": "musicnn", "MSD_musicnn": "musicnn", "MTT_vgg": "vgg", "MSD_vgg": "vgg"}
_MAX_CONFIG_BYTES = 1 << 20
_UNUSED = ("beta1_power", "beta2_power", "global_step")


class WeightsError(ValueError):
    """The weights file is not the expected wheel, or its checkpoints do not fit our modules (one line)."""


class WeightsMissing(WeightsError, FileNotFoundError):
    """The wheel is not on disk; the message says how to get it."""


def fetch_command(cache: Path | None = None) -> str:
    dest = cache if cache is not None else _cache_dir()
    return f"pip download --no-deps musicnn=={WHEEL_VERSION} -d {dest}"


def _cache_dir() -> Path:
    from stylegan_ada.pretrained import cache_dir

    return cache_dir()


def search_paths() -> list[Path]:
    from stylegan_ada.pretrained import REPO_PRETRAINED_DIR

    return [_cache_dir() / WHEEL_FILENAME, REPO_PRETRAINED_DIR / WHEEL_FILENAME]


def find_wheel() -> Path | None:
    """The musicnn wheel in the cache (``$AUGMENT_CACHE``) or the repository's ``pretrained/`` folder, or None."""
    return next((p for p in search_paths() if p.is_file()), None)


_VERIFIED: dict[tuple[str, int, int], bool] = {}
_LOCK = threading.Lock()


def verify_wheel(path: str | os.PathLike) -> Path:
    """Check the file is the musicnn 0.1.0 wheel (sha256); WeightsError otherwise. Cached per (path, size, mtime)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        digest = sha256_file(path)
        if digest != WHEEL_SHA256:
            raise WeightsError(f"{path} is not the musicnn {WHEEL_VERSION} wheel (sha256 {digest[:12]}..., expected "
                               f"{WHEEL_SHA256[:12]}...); delete it and fetch it again")
        _VERIFIED[key] = True
    return path


def resolve_wheel(wheel: str | os.PathLike | None = None) -> Path:
    path = Path(wheel) if wheel is not None else find_wheel()
    if path is None or not path.is_file():
        where = path if path is not None else search_paths()[0]
        raise WeightsMissing(f"the MusiCNN weights (the musicnn {WHEEL_VERSION} wheel) are not at {where}; run "
                             f"`classify weights fetch musicnn` (or `{fetch_command()}`)")
    return verify_wheel(path)


def _bn(prefix: str, tf: str) -> dict[str, str]:
    return {f"{prefix}.weight": f"{tf}/gamma", f"{prefix}.bias": f"{tf}/beta",
            f"{prefix}.running_mean": f"{tf}/moving_mean", f"{prefix}.running_var": f"{tf}/moving_variance"}


def _dense(prefix: str, tf: str) -> dict[str, str]:
    return {f"{prefix}.weight": f"{tf}/kernel", f"{prefix}.bias": f"{tf}/bias"}


def _variable_map(kind: str) -> dict[str, str]:
    """Our state-dict key -> checkpoint variable (the order of layers in the TF graph names them)."""
    m = _bn("bn_input", "batch_normalization")
    if kind == "musicnn":
        branches = [f"timbral.{i}" for i in range(2)] + [f"temporal.{i}" for i in range(3)] + \
                   [f"midend.{i}" for i in range(3)]
        for i, prefix in enumerate(branches):
            m.update(_dense(f"{prefix}.conv", "conv2d" if i == 0 else f"conv2d_{i}"))
            m.update(_bn(f"{prefix}.bn", f"batch_normalization_{i + 1}"))
        m.update(_bn("bn_pool", "batch_normalization_9"))
        m.update(_dense("dense", "dense"))
        m.update(_bn("bn_dense", "batch_normalization_10"))
        m.update(_dense("head", "dense_1"))
    else:
        for i in range(5):
            m.update(_dense(f"convs.{i}", f"{i + 1}CNN"))
            m.update(_bn(f"bns.{i}", f"batch_normalization_{i + 1}"))
        m.update(_dense("head", "dense"))
    return m


def _to_torch(key: str, value: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    if value.ndim == 4:                                  # conv kernel [kh, kw, in, out]
        value = value.transpose(3, 2, 0, 1)
        if like.ndim == 3:                               # our 1-D mid-end conv: the kernel spans the whole width
            value = value[:, 0].transpose(0, 2, 1)
    elif value.ndim == 2:                                # dense kernel [in, out]
        value = value.T
    t = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    if tuple(t.shape) != tuple(like.shape):
        raise WeightsError(f"checkpoint variable for {key} has shape {tuple(t.shape)}, our module expects "
                           f"{tuple(like.shape)}")
    return t


def state_dict_from_checkpoint(ckpt: Checkpoint, module: torch.nn.Module, kind: str) -> dict[str, torch.Tensor]:
    """Our module's state dict from the checkpoint; WeightsError if any variable is missing, extra or misshapen."""
    mapping = _variable_map(kind)
    own = module.state_dict()
    expected = {k for k in own if not k.endswith("num_batches_tracked")}
    if set(mapping) != expected:
        raise WeightsError(f"variable map does not cover the {kind} module: {sorted(expected ^ set(mapping))[:3]}")
    model_vars = {n for n in ckpt.entries if "/Adam" not in n and n not in _UNUSED}
    missing, extra = sorted(set(mapping.values()) - model_vars), sorted(model_vars - set(mapping.values()))
    if missing or extra:
        raise WeightsError(f"{ckpt.source}: not a {kind} checkpoint ({len(missing)} variables missing, e.g. "
                           f"{missing[:2]}; {len(extra)} unexpected, e.g. {extra[:2]})")
    state = {k: _to_torch(k, ckpt.read(v), own[k]) for k, v in mapping.items()}
    state.update({k: torch.zeros((), dtype=torch.long) for k in own if k.endswith("num_batches_tracked")})
    return state


_STATES: dict[tuple[str, str], dict[str, torch.Tensor]] = {}


def _build(kind: str) -> torch.nn.Module:
    return MusiCNN() if kind == "musicnn" else VGGish()


def load_musicnn(name: str, wheel: str | os.PathLike | None = None) -> torch.nn.Module:
    """``MTT_musicnn`` | ``MSD_musicnn`` | ``MTT_vgg`` | ``MSD_vgg`` with its pretrained weights, in eval mode.

    forward([N, 187, 96] float32 log-mel patches) -> dict with ``logits`` and ``taggram`` [N, 50], ``embedding``
    and, for MusiCNN, ``penultimate``, ``max_pool``, ``mean_pool`` and the frame features. Weights are read once per
    process; every call returns a new module.
    """
    if name not in MODELS:
        raise WeightsError(f"unknown MusiCNN model {name!r}; choose one of {', '.join(MODELS)}")
    path = resolve_wheel(wheel)
    kind = MODELS[name]
    module = _build(kind)
    key = (str(path.resolve()), name)
    with _LOCK:
        if key not in _STATES:
            try:
                ckpt = open_checkpoint_in_zip(path, f"musicnn/{name}/")
            except (CheckpointError, zipfile.BadZipFile) as exc:
                raise WeightsError(f"{path}: {exc}") from None
            _STATES[key] = state_dict_from_checkpoint(ckpt, module, kind)
    module.load_state_dict(_STATES[key], strict=True)
    return module.eval()


def load_labels(name: str, wheel: str | os.PathLike | None = None) -> list[str]:
    """The 50 tag names of ``name`` in output order, read as literals from the wheel's configuration module."""
    prefix = name.split("_")[0]
    path = resolve_wheel(wheel)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("musicnn/configuration.py")
        if info.file_size > _MAX_CONFIG_BYTES:
            raise WeightsError(f"{path}: musicnn/configuration.py is implausibly large")
        tree = ast.parse(zf.read(info).decode("utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == f"{prefix}_LABELS" for t in node.targets):
            labels = ast.literal_eval(node.value)
            if isinstance(labels, list) and len(labels) == 50 and all(isinstance(s, str) for s in labels):
                return labels
    raise WeightsError(f"{path}: no list of 50 {prefix} labels in musicnn/configuration.py")
