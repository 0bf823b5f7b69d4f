"""A trained classifier on disk: ``model.safetensors`` (the best epoch's state dict) + ``model.json`` (how to rebuild
it and what it saw), written into every ``classify eval`` run folder.

Loading runs no code from either file: the JSON is parsed with bounded size and checked field by field, the weights
file is bounded in size and must match the sha256 recorded in the JSON, the network is built from the recorded
architecture name (one of :data:`classify.archs.ARCHS`) and every stored tensor must have the name, shape and dtype
of the built network's. Any problem is one ``error:`` line (UserError).

``model.json`` also records ``training_sha256``: the image and source-audio hashes of every non-test item of the
workspace it was trained on (its GAN and classic copies derive from those too), the bytes of every train/val image
it read, and, for a model that itself started from one (``--init``), that model's set. ``classify eval --init``
refuses a target workspace whose test split is among them (classify/init_from.py).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from augment.errors import UserError
from augment.io_utils import atomic_write_bytes, atomic_write_json, sha256_bytes

FORMAT = "classify-model-v1"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "model.json"
MAX_WEIGHTS_BYTES = 1 << 30         # vgg16_bn, the largest of the zoo, is 0.55 GB in float32
MAX_CONFIG_BYTES = 64 << 20         # ~ 400k training hashes
MAX_CLASSES = 10_000
MAX_INPUT_SIZE = 4096
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class SavedModel:
    """A loaded, verified ``model.json`` + ``model.safetensors`` pair (``state``: CPU tensors by name)."""

    config: dict[str, Any]
    state: dict[str, Any]
    config_path: Path
    weights_path: Path
    config_sha256: str

    @property
    def arch(self) -> str:
        return str(self.config["arch"])

    @property
    def classes(self) -> list[str]:
        return list(self.config["classes"])

    @property
    def input_size(self) -> int:
        return int(self.config["input_size"])

    @property
    def workspace(self) -> dict[str, Any]:
        return dict(self.config["workspace"])

    @property
    def training_sha256(self) -> set[str]:
        return set(self.config["training_sha256"])

    def record(self) -> dict[str, Any]:
        """Where it came from, for metrics.json / run.json of a run that starts from it."""
        return {"path": str(self.config_path.parent), "run_id": self.config.get("run_id"), "arch": self.arch,
                "classes": self.classes, "weights_sha256": self.config["weights_sha256"],
                "config_sha256": self.config_sha256,
                "training_sha256_digest": self.config.get("training_sha256_digest"),
                "workspace_test_sha256": self.workspace.get("test_sha256")}


# ------------------------------------------------------------------------------------------------------- saving
def workspace_record(ws: Any) -> dict[str, Any]:
    """What turns audio or an image into the picture the model saw: the workspace's kind, image mapping and mel."""
    return {"root": str(ws.root), "dataset": ws.dataset_name, "kind": ws.config.get("kind"),
            "resolution": ws.resolution, "image": dict(ws.config.get("image") or {}), "mel": ws.config.get("mel"),
            "test_sha256": ws.config["splits"].get("test_sha256"), "segments": _segmenting(ws.config.get("segments"))}


def _segmenting(record: Any) -> dict[str, Any] | None:
    """``--segments`` / ``--hop-seconds`` of a segmented workspace (not its per-image windows), else None."""
    if not isinstance(record, dict) or (record.get("count") in (None, 1) and record.get("hop_seconds") is None):
        return None
    return {"count": record.get("count"), "hop_seconds": record.get("hop_seconds")}


def training_hashes(ws: Any, read: Iterable[str], inherited: Iterable[str] = ()) -> list[str]:
    """Sorted image + source sha256 of every non-test row of ``ws``, the ``read`` train/val bytes and ``inherited``."""
    out = {h for r in ws.rows() if r.split != "test" for h in (r.image_sha256, r.source_sha256)}
    return sorted(out | set(read) | set(inherited))


def save_model(folder: Path, built: Any, *, classes: list[str], input_size: int, ws: Any, run_id: str,
               training: list[str], pretrained: str, init: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``folder/model.safetensors`` and ``folder/model.json`` (both atomically); returns the JSON record."""
    from safetensors.torch import save as st_save

    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in built.model.state_dict().items()}
    data = st_save(state, metadata={"format": FORMAT})
    config = {
        "format": FORMAT, "run_id": run_id, "arch": built.spec.name, "mode": built.mode,
        "pretrained": pretrained, "classes": list(classes), "input_size": int(input_size),
        "normalisation": {"mean": list(built.spec.mean), "std": list(built.spec.std), "scale": "pixels / 255"},
        "heads": list(built.head_names), "weights_file": WEIGHTS_NAME, "weights_bytes": len(data),
        "weights_sha256": sha256_bytes(data), "workspace": workspace_record(ws),
        "training_sha256": training, "training_sha256_digest": sha256_bytes("\n".join(training).encode()),
        "init": init,
    }
    atomic_write_bytes(folder / WEIGHTS_NAME, data)
    atomic_write_json(folder / CONFIG_NAME, config)
    return config


# ------------------------------------------------------------------------------------------------------ loading
def model_paths(path: str | Path) -> tuple[Path, Path]:
    """(model.json, model.safetensors) for a run folder, either file of the pair, or a folder holding them."""
    p = Path(path)
    if p.is_dir():
        p = p / CONFIG_NAME
    elif p.suffix == ".safetensors":
        p = p.with_name(CONFIG_NAME)
    if not p.is_file():
        raise UserError(f"no saved classifier at {path}: {p} does not exist; give a `classify eval` run folder "
                        f"(results/NNNNN-...) holding {CONFIG_NAME} and {WEIGHTS_NAME}")
    return p, p.with_name(WEIGHTS_NAME)


def _bad(path: Path, what: str) -> UserError:
    return UserError(f"{path}: {what}; it is not a classifier saved by `classify eval` (re-run the eval)")


def _check_config(cfg: Any, path: Path) -> dict[str, Any]:
    """Every field a loader relies on has the right type and a sane range."""
    from classify.archs import ARCHS

    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise _bad(path, f"not a {FORMAT} record")
    arch, classes, size = cfg.get("arch"), cfg.get("classes"), cfg.get("input_size")
    if not isinstance(arch, str) or arch not in ARCHS:
        raise _bad(path, f"unknown architecture {str(arch)[:40]!r}")
    if (not isinstance(classes, list) or not 2 <= len(classes) <= MAX_CLASSES
            or not all(isinstance(c, str) and c for c in classes) or len(set(classes)) != len(classes)):
        raise _bad(path, "'classes' must be a list of 2 or more distinct names")
    if not isinstance(size, int) or isinstance(size, bool) or not ARCHS[arch].min_input <= size <= MAX_INPUT_SIZE:
        raise _bad(path, f"'input_size' must be an integer from {ARCHS[arch].min_input} to {MAX_INPUT_SIZE}")
    if cfg.get("mode") not in ("freeze", "whole") or not isinstance(cfg.get("weights_sha256"), str) \
            or not _HEX64.match(cfg["weights_sha256"]):
        raise _bad(path, "'mode' or 'weights_sha256' is missing or malformed")
    nb = cfg.get("weights_bytes")
    if not isinstance(nb, int) or isinstance(nb, bool) or not 0 < nb <= MAX_WEIGHTS_BYTES:
        raise _bad(path, f"'weights_bytes' must be an integer from 1 to {MAX_WEIGHTS_BYTES}")
    norm, ws = cfg.get("normalisation"), cfg.get("workspace")
    if not isinstance(norm, dict) or not all(
            isinstance(norm.get(k), list) and len(norm[k]) == 3
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in norm[k])
            for k in ("mean", "std")) or not all(v > 0 for v in norm["std"]):
        raise _bad(path, "'normalisation' must hold 3 finite means and 3 positive stds")
    if not isinstance(ws, dict) or ws.get("kind") not in ("audio", "images") or not isinstance(ws.get("image"), dict) \
            or not isinstance(ws.get("resolution"), int) or not 1 <= ws["resolution"] <= MAX_INPUT_SIZE \
            or not isinstance(ws.get("mel"), (dict, type(None))):
        raise _bad(path, "'workspace' (kind, resolution, image mapping, mel) is missing or malformed")
    hashes = cfg.get("training_sha256")
    if not isinstance(hashes, list) or not all(isinstance(h, str) and _HEX64.match(h) for h in hashes):
        raise _bad(path, "'training_sha256' must be a list of sha256 hex digests")
    if not isinstance(cfg.get("init"), (dict, type(None))):
        raise _bad(path, "'init' must be an object or null")
    return cfg


def _read_weights(path: Path, cfg: dict[str, Any]) -> bytes:
    try:
        size = path.stat().st_size
        if size != cfg["weights_bytes"]:
            raise UserError(f"{path} is {size} bytes, {CONFIG_NAME} says {cfg['weights_bytes']} (truncated or "
                            "replaced); re-run `classify eval` to save the model again")
        with open(path, "rb") as f:
            data = f.read(MAX_WEIGHTS_BYTES + 1)
    except FileNotFoundError:
        raise UserError(f"{path} is missing beside its {CONFIG_NAME}; re-run `classify eval`") from None
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or exc})") from None
    if len(data) != cfg["weights_bytes"] or sha256_bytes(data) != cfg["weights_sha256"]:
        raise UserError(f"{path} does not match the sha256 recorded in {CONFIG_NAME} (corrupt or replaced); "
                        "re-run `classify eval` to save the model again")
    return data


def load_saved(path: str | Path) -> SavedModel:
    """Read and verify a saved classifier (run folder, model.json or model.safetensors); tensors on the CPU."""
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    config_path, weights_path = model_paths(path)
    try:
        with open(config_path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ValueError(f"larger than {MAX_CONFIG_BYTES} bytes")
        cfg = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise UserError(f"{config_path} is nested too deeply; re-run `classify eval`") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{config_path} is unreadable or not valid JSON ({str(exc)[:200]}); re-run `classify eval`") \
            from None
    cfg = _check_config(cfg, config_path)
    data = _read_weights(weights_path, cfg)
    try:
        state = st_load(data)
    except (SafetensorError, ValueError, RuntimeError, OverflowError) as exc:
        raise UserError(f"{weights_path} is not readable safetensors data ({str(exc)[:200]})") from None
    return SavedModel(cfg, state, config_path, weights_path, sha256_bytes(raw))


def check_state(model: Any, state: dict[str, Any], keys: Iterable[str], what: str) -> None:
    """``state`` holds exactly ``keys`` of ``model``'s state dict, each with its shape and dtype; UserError if not."""
    own = model.state_dict()
    wanted = set(keys)
    missing = sorted(wanted - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise UserError(f"{what} does not fit a {type(model).__name__}: {len(missing)} tensor(s) missing "
                        f"({', '.join(missing[:3])}), {len(unexpected)} unexpected ({', '.join(unexpected[:3])})")
    for k in wanted:
        if tuple(state[k].shape) != tuple(own[k].shape) or state[k].dtype != own[k].dtype:
            raise UserError(f"{what}: tensor {k} is {state[k].dtype} {tuple(state[k].shape)}, the network expects "
                            f"{own[k].dtype} {tuple(own[k].shape)}")


def copy_weights(model: Any, state: dict[str, Any], keys: Iterable[str]) -> None:
    """Copy ``keys`` from ``state`` into ``model`` in place (checked by :func:`check_state` first)."""
    import torch

    own = model.state_dict()
    with torch.no_grad():
        for k in keys:
            own[k].copy_(state[k])


def build_saved(saved: SavedModel, device: str = "cpu") -> Any:
    """The saved network rebuilt (random init, no downloads), with every stored tensor copied in; eval mode."""
    from classify.archs import build_model

    built = build_model(saved.arch, len(saved.classes), "whole", "none")
    keys = list(built.model.state_dict())
    check_state(built.model, saved.state, keys, str(saved.weights_path))
    copy_weights(built.model, saved.state, keys)
    built.model.to(device).eval()
    return built
