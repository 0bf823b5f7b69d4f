"""For the loader/snapshot tests: pickles written the way the reference
writes them (``torch_utils.persistence`` records with embedded source), built without the reference's code."""
from __future__ import annotations

import collections
import pickle
import sys
import types
from typing import Any

import torch


class Persistent:
    """Pickles as ``torch_utils.persistence._reconstruct_persistent_obj(meta)``, like the reference's objects."""

    def __init__(self, fn: Any, meta: dict):
        self.fn, self.meta = fn, meta

    def __reduce__(self):
        return self.fn, (self.meta,)


def install_fake_persistence(monkeypatch) -> Any:
    """Make ``torch_utils.persistence._reconstruct_persistent_obj`` picklable by name (it is never called)."""
    def _reconstruct_persistent_obj(meta):  # pragma: no cover - only its name is pickled
        raise AssertionError("the reference reconstruct function must never be called")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    module = types.ModuleType("torch_utils.persistence")
    module._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", module)
    return _reconstruct_persistent_obj


def install_fake_easydict(monkeypatch) -> type:
    """A dict subclass that pickles as ``dnnlib.util.EasyDict``, as the reference's kwargs do."""
    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    module = types.ModuleType("dnnlib.util")
    module.EasyDict = EasyDict
    monkeypatch.setitem(sys.modules, "dnnlib", types.ModuleType("dnnlib"))
    monkeypatch.setitem(sys.modules, "dnnlib.util", module)
    return EasyDict


def persistent_record(fn: Any, module: torch.nn.Module, module_src: str, top: bool = True) -> Persistent:
    """The reference's pickled form of ``module`` (its __dict__ layout), with ``module_src`` as embedded source."""
    state = {
        "training": False,
        "_parameters": collections.OrderedDict(module._parameters),
        "_buffers": collections.OrderedDict(module._buffers),
        "_non_persistent_buffers_set": set(module._non_persistent_buffers_set),
        "_modules": {k: persistent_record(fn, v, module_src, top=False) for k, v in module._modules.items()},
        "_init_args": (),
        "_init_kwargs": dict(module.init_kwargs) if top else {},
    }
    return Persistent(fn, dict(type="class", version=6, module_src=module_src, class_name=type(module).__name__,
                               state=state))


def reference_pickle_bytes(fn: Any, modules: dict[str, torch.nn.Module | None], module_src: str,
                           training_set_kwargs: dict | None = None) -> bytes:
    """A reference-style ``network-snapshot.pkl`` dict of the given modules."""
    data: dict[str, Any] = {"training_set_kwargs": training_set_kwargs}
    for key, module in modules.items():
        data[key] = None if module is None else persistent_record(fn, module, module_src)
    return pickle.dumps(data, protocol=4)
