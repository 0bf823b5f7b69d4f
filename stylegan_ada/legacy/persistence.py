"""Reference PyTorch snapshot pickles (``torch_utils.persistence`` objects) -> our modules.

The embedded module source is ignored: each network is rebuilt from its recorded constructor kwargs with our own
classes, then its parameters and buffers are copied in by name.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from stylegan_ada.checkpoint import NetworkLoadError, copy_state_into
from stylegan_ada.legacy.unpickler import PersistentRecord


def _network_classes() -> dict[str, Callable[..., torch.nn.Module]]:
    from stylegan_ada import networks

    return {"Generator": networks.Generator, "Discriminator": networks.Discriminator}


def _augment_pipe_class() -> Callable[..., torch.nn.Module]:
    from stylegan_ada.augment_pipe import AugmentPipe

    return AugmentPipe


def plain(value: Any) -> Any:
    """A copy of recorded kwargs with EasyDicts, OrderedDicts and tuples turned into dicts and lists."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def collect_state(record: PersistentRecord, prefix: str = "", _seen: frozenset = frozenset()
                  ) -> dict[str, torch.Tensor]:
    """Every persistent parameter and buffer of a recorded module tree, by state-dict name."""
    if id(record) in _seen:
        raise NetworkLoadError(f"the module tree in the pickle loops back on itself at {prefix or 'the top'}")
    _seen = _seen | {id(record)}
    state = record.state
    out: dict[str, torch.Tensor] = {}
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, tensor in (state.get(group) or {}).items():
            if tensor is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(tensor, torch.Tensor):
                raise NetworkLoadError(f"{prefix}{name} is not a tensor in the pickle")
            out[prefix + name] = tensor
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentRecord):
            raise NetworkLoadError(f"submodule {prefix}{name} is not a reference network object")
        out.update(collect_state(child, f"{prefix}{name}.", _seen))
    return out


def module_from_record(record: Any, what: str) -> torch.nn.Module:
    """Build our equivalent of a recorded reference module (G, D, G_ema or augment_pipe) and copy its state."""
    if not isinstance(record, PersistentRecord):
        raise NetworkLoadError(f"{what} is not a reference network object (got {type(record).__name__})")
    if record.class_name == "AugmentPipe":
        factory = _augment_pipe_class()
    else:
        factory = _network_classes().get(record.class_name)
    if factory is None:
        raise NetworkLoadError(f"{what} is a {record.class_name!r}; only Generator, Discriminator and AugmentPipe "
                               "from the reference can be loaded")
    if record.state.get("_init_args"):
        raise NetworkLoadError(f"{what} was built with positional arguments; cannot rebuild it")
    kwargs = plain(record.state.get("_init_kwargs") or {})
    try:
        module = factory(**kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise NetworkLoadError(f"{what}: cannot rebuild {record.class_name} from its recorded kwargs: {exc}") from exc
    state = collect_state(record)
    keep: tuple[str, ...] = ()
    if record.class_name == "AugmentPipe":
        # Only the strength p is learned; the other buffers are fixed filters our class builds itself.
        if "p" not in state:
            raise NetworkLoadError(f"{what}: the AugmentPipe in the pickle has no 'p' buffer")
        state = {"p": state["p"]}
        keep = tuple(k for k in module.state_dict() if k != "p")
    copy_state_into(module, state, what=what, keep=keep)
    return module


def convert_reference_snapshot(data: Any) -> dict[str, Any]:
    """The dict of a reference ``network-snapshot-*.pkl`` -> dict of our modules (not yet finalized)."""
    if not isinstance(data, dict):
        raise NetworkLoadError(f"a reference snapshot pickle holds a dict, this one holds {type(data).__name__}")
    out: dict[str, Any] = {}
    for key in ("G", "D", "G_ema", "augment_pipe"):
        record = data.get(key)
        out[key] = None if record is None else module_from_record(record, key)
    tsk = data.get("training_set_kwargs")
    out["training_set_kwargs"] = plain(tsk) if isinstance(tsk, dict) else None
    return out
