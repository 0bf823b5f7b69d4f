"""Reference PyTorch snapshot pickles (``torch_utils.persistence`` objects) -> our modules.

The embedded module source is ignored: each network is rebuilt from its recorded constructor kwargs with our own
classes, then its parameters and buffers are copied in by name.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from stylegan_ada.checkpoint import NetworkLoadError, copy_state_into
from stylegan_ada.legacy.limits import MAX_ITEMS, build_bounded, check_plain
from stylegan_ada.legacy.unpickler import PersistentRecord


def _network_classes() -> dict[str, Callable[..., torch.nn.Module]]:
    from stylegan_ada import networks

    return {"Generator": networks.Generator, "Discriminator": networks.Discriminator}


def _augment_pipe_class() -> Callable[..., torch.nn.Module]:
    from stylegan_ada.augment_pipe import AugmentPipe

    return AugmentPipe


_SCALARS = (str, int, float, bool, type(None))


def plain(value: Any) -> Any:
    """A copy of recorded kwargs with EasyDicts, OrderedDicts and tuples turned into dicts and lists.

    Call it only on values that passed :func:`~stylegan_ada.legacy.limits.check_plain` (bounded size and depth).
    Anything but containers, numbers, strings and 0-d numpy/torch scalars is refused.
    """
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (np.generic, np.ndarray, torch.Tensor)) and getattr(value, "ndim", None) == 0:
        return value.item()
    raise NetworkLoadError(f"the recorded kwargs hold a {type(value).__name__}, not a plain value")


def checked_plain(value: Any, what: str) -> Any:
    """:func:`plain` of ``value`` after checking it is bounded (no exponential walk, no deep recursion)."""
    check_plain(value, what, NetworkLoadError)
    return plain(value)


def _tensors_of(state: dict, prefix: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    skip = state.get("_non_persistent_buffers_set") or ()
    if not isinstance(skip, (set, frozenset, list, tuple)):
        raise NetworkLoadError(f"{prefix or 'the top module'}: _non_persistent_buffers_set is not a set")
    for group in ("_parameters", "_buffers"):
        tensors = state.get(group) or {}
        if not isinstance(tensors, dict):
            raise NetworkLoadError(f"{prefix or 'the top module'}: {group} is not a dict in the pickle")
        for name, tensor in tensors.items():
            if tensor is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
                raise NetworkLoadError(f"{prefix}{name} is not a named tensor in the pickle")
            out[prefix + name] = tensor
    return out


def collect_state(record: PersistentRecord, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every persistent parameter and buffer of a recorded module tree, by state-dict name.

    Each record is visited once (iteratively): a tree that shares a submodule or loops is refused, so the walk is
    linear in the file, however its references are arranged.
    """
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    todo: list[tuple[PersistentRecord, str]] = [(record, prefix)]
    while todo:
        node, where = todo.pop()
        if id(node) in seen:
            path = where.rstrip(".") or "the top"
            path = path if len(path) < 60 else "..." + path[-40:]
            raise NetworkLoadError(f"the module tree in the pickle reaches {path} twice (shared or looping "
                                   "submodules); reference networks have neither")
        seen.add(id(node))
        if len(seen) > MAX_ITEMS:
            raise NetworkLoadError(f"the module tree in the pickle has more than {MAX_ITEMS} modules")
        if not isinstance(node.state, dict):
            raise NetworkLoadError(f"{where or 'the top module'} has no state dict in the pickle")
        out.update(_tensors_of(node.state, where))
        children = node.state.get("_modules") or {}
        if not isinstance(children, dict):
            raise NetworkLoadError(f"{where or 'the top module'}: _modules is not a dict in the pickle")
        for name, child in children.items():
            if child is None:
                continue
            if not isinstance(child, PersistentRecord) or not isinstance(name, str):
                raise NetworkLoadError(f"submodule {where}{name} is not a reference network object")
            todo.append((child, f"{where}{name}."))
    return out


def module_from_record(record: Any, what: str, budget: int) -> torch.nn.Module:
    """Build our equivalent of a recorded reference module (G, D, G_ema or augment_pipe) and copy its state.

    ``budget``: the file's size; a network needing more memory than that is refused before it is allocated.
    """
    if not isinstance(record, PersistentRecord):
        raise NetworkLoadError(f"{what} is not a reference network object (got {type(record).__name__})")
    if record.class_name == "AugmentPipe":
        factory = _augment_pipe_class()
    else:
        factory = _network_classes().get(record.class_name)
    if factory is None:
        raise NetworkLoadError(f"{what} is a {record.class_name[:60]!r}; only Generator, Discriminator and "
                               "AugmentPipe from the reference can be loaded")
    if record.state.get("_init_args"):
        raise NetworkLoadError(f"{what} was built with positional arguments; cannot rebuild it")
    kwargs = checked_plain(record.state.get("_init_kwargs") or {}, f"{what}: the recorded kwargs")
    state = collect_state(record)
    keep: tuple[str, ...] = ()
    if record.class_name == "AugmentPipe":
        # Only the strength p is learned; the other buffers are fixed filters our class builds itself.
        if "p" not in state:
            raise NetworkLoadError(f"{what}: the AugmentPipe in the pickle has no 'p' buffer")
        state = {"p": state["p"]}
        keep = ("Hz_geom", "Hz_fbank")  # fixed filters (within the size limit's slack)
    module, state = build_bounded(factory, kwargs, what=what, budget=budget, error=NetworkLoadError, state=state,
                                  keep=keep)
    copy_state_into(module, state, what=what, keep=keep)
    return module


def convert_reference_snapshot(data: Any, budget: int) -> dict[str, Any]:
    """The dict of a reference ``network-snapshot-*.pkl`` -> dict of our modules (not yet finalized)."""
    if not isinstance(data, dict):
        raise NetworkLoadError(f"a reference snapshot pickle holds a dict, this one holds {type(data).__name__}")
    out: dict[str, Any] = {}
    for key in ("G", "D", "G_ema", "augment_pipe"):
        record = data.get(key)
        out[key] = None if record is None else module_from_record(record, key, budget)
    tsk = data.get("training_set_kwargs")
    out["training_set_kwargs"] = checked_plain(tsk, "training_set_kwargs") if isinstance(tsk, dict) else None
    return out
