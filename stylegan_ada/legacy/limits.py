"""Bounds on what a network file can make us do: time and memory stay proportional to the file's size.

A file is data we did not write. Its containers may share references (a pickle's memo makes a 500-byte file whose
nested lists expand to 1e10 items, or a module tree whose 40 levels of shared children take 2^40 steps to walk),
nest 50,000 levels deep (Python recursion fails), or record kwargs for a network far larger than the tensors the file
holds (allocating it would exhaust memory). Everything here walks iteratively, visits each object once, and measures
the network described by the kwargs on the ``meta`` device (no memory) before the real one is allocated.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch

MAX_ITEMS = 100_000        # values in recorded kwargs / metadata once shared references are expanded
MAX_DEPTH = 32             # nesting of recorded kwargs / metadata (the reference's are at most 3 deep)
MAX_RESOLUTION = 1 << 14   # img_resolution: the number of network blocks grows with its log2
MAX_LAYERS = 64            # mapping num_layers (the reference uses at most 8)
SLACK_BYTES = 1 << 20      # fixed buffers our classes build themselves (filters) beyond the stored tensors


def _children(value: Any) -> list | None:
    """The contained values of a container (None for a leaf)."""
    if isinstance(value, Mapping):
        return [*value.keys(), *value.values()]
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return None


def check_plain(value: Any, what: str, error: type[Exception], *, max_items: int = MAX_ITEMS,
                max_depth: int = MAX_DEPTH) -> None:
    """Refuse ``value`` if it loops, nests deeper than ``max_depth`` or holds more than ``max_items`` values once
    shared references are counted as copies (which is what any plain walk would visit). Linear in the number of
    distinct objects; never recursive."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    alive: list[Any] = []  # keeps every visited object alive, so no id() is reused during the walk
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(size.get(id(c), 1) for c in children)
            if total > max_items:
                raise error(f"{what}: more than {max_items} values once shared references are expanded; refusing it")
            size[key] = total
            continue
        if children is None or key in size:
            continue
        if key in on_path:
            raise error(f"{what}: contains itself (a reference loop); refusing it")
        if len(on_path) >= max_depth:
            raise error(f"{what}: nested more than {max_depth} levels deep; refusing it")
        if len(children) > max_items:
            raise error(f"{what}: a container of {len(children)} values (limit {max_items}); refusing it")
        on_path.add(key)
        alive.append(node)
        stack.append((node, True))
        stack.extend((c, False) for c in children if _children(c) is not None and id(c) not in size)


def _walk_keys(value: Any) -> Iterable[tuple[str, Any]]:
    """(key, value) of every mapping entry in an already-checked (bounded) value."""
    todo = [value]
    while todo:
        node = todo.pop()
        if isinstance(node, Mapping):
            for k, v in node.items():
                yield str(k), v
                todo.append(v)
        elif isinstance(node, (list, tuple)):
            todo.extend(node)


def check_structure(kwargs: Mapping[str, Any], what: str, error: type[Exception]) -> None:
    """Refuse kwargs whose counts would make even building the network's skeleton slow."""
    for key, value in _walk_keys(kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            continue
        if key == "img_resolution" and not 4 <= value <= MAX_RESOLUTION:
            raise error(f"{what}: img_resolution {value} is outside 4..{MAX_RESOLUTION}")
        if key == "num_layers" and not 0 <= value <= MAX_LAYERS:
            raise error(f"{what}: num_layers {value} is outside 0..{MAX_LAYERS}")


def module_bytes(module: torch.nn.Module) -> int:
    """Bytes of every parameter and buffer (also on the meta device, where nothing is allocated)."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


BUILD_ERRORS = (TypeError, ValueError, AssertionError, RuntimeError, OverflowError, ZeroDivisionError, KeyError,
                AttributeError, IndexError, RecursionError, MemoryError)


def check_state_shapes(own: Mapping[str, torch.Tensor], state: Mapping[str, Any], *, what: str,
                       error: type[Exception], keep: tuple[str, ...] = ()) -> None:
    """``state`` has exactly the names of ``own`` (those ending in ``keep`` may be absent) with the same shapes."""
    missing = [k for k in own if k not in state and not k.endswith(keep)]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} (e.g. {', '.join(unexpected[:3])})")
        raise error(f"{what}: stored tensors do not match the network built from its kwargs: {'; '.join(parts)}")
    for name, dst in own.items():
        if name in state:
            shape = tuple(getattr(state[name], "shape", ()))
            if shape != tuple(dst.shape):
                raise error(f"{what}: tensor {name} has shape {shape}, the network expects {tuple(dst.shape)}")


def build_bounded(factory: Callable[..., torch.nn.Module], kwargs: Any, *, what: str, budget: int,
                  error: type[Exception],
                  state: Mapping[str, Any] | Callable[[list[str]], Mapping[str, Any]],
                  keep: tuple[str, ...] = ()) -> tuple[torch.nn.Module, Mapping[str, Any]]:
    """Build ``factory(**kwargs)`` only after its size is known to fit ``budget`` (the file's bytes).

    The network is first built on the meta device; its stored tensors (``state``, or ``state(names)``) must match
    it by name and shape and it must not need more memory than the file holds. Returns (module, state) with the
    module built for real but its weights not yet copied.
    """
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise error(f"{what}: the recorded kwargs are not a dict of names (got {type(kwargs).__name__})")
    check_plain(kwargs, f"{what}: the recorded kwargs", error)
    check_structure(kwargs, what, error)
    try:
        with torch.device("meta"):
            skeleton = factory(**kwargs)
    except BUILD_ERRORS as exc:
        raise error(f"{what}: cannot rebuild it from its recorded kwargs ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    need = module_bytes(skeleton)
    if need > budget + SLACK_BYTES:
        raise error(f"{what}: its recorded kwargs describe a network of {need / 2**20:.1f} MiB but the file is only "
                    f"{budget / 2**20:.1f} MiB; refusing to allocate it (corrupt or crafted file)")
    own = skeleton.state_dict()
    if callable(state):
        state = state(list(own))
    check_state_shapes(own, state, what=what, error=error, keep=keep)
    del skeleton, own
    try:
        module = factory(**kwargs)
    except BUILD_ERRORS as exc:
        raise error(f"{what}: cannot rebuild it from its recorded kwargs ({type(exc).__name__})") from None
    return module, state
