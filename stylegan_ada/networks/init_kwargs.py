"""Record the constructor arguments of a module as a JSON-able `init_kwargs` dict (so it can be rebuilt)."""
from __future__ import annotations

import functools
import inspect
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T", bound=type)


def to_jsonable(value: Any) -> Any:
    """A plain-JSON copy of `value` (tuples -> lists, numpy scalars -> Python numbers)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"constructor argument {value!r} of type {type(value).__name__} is not JSON-able")


def records_init_kwargs(cls: T) -> T:
    """Class decorator: after `__init__`, `self.init_kwargs` holds the passed arguments by name, JSON-able."""
    original_init = cls.__init__
    signature = inspect.signature(original_init)

    @functools.wraps(original_init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        recorded: dict[str, Any] = {}
        for name, value in list(bound.arguments.items())[1:]:
            if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                recorded.update(value)
            else:
                recorded[name] = value
        self.init_kwargs = to_jsonable(recorded)  # a decorated subclass overwrites this after its own init

    cls.__init__ = __init__  # type: ignore[method-assign]
    return cls
