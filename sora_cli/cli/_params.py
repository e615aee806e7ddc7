"""Option and argument values converted without pydantic on the hot path.

Typer (0.2x) converts every value through a pydantic `TypeAdapter`: importing
pydantic and building the adapters costs more than the rest of `sora status`
(about 70 ms on a small machine). sora's commands take only plain `str`, `int`,
`float`, `bool` and lists of them, and a well-formed value converts the same way
with Python's own `int()`/`float()`. So those values are converted here; anything
else (a malformed number, a type we do not know) goes to Typer's pydantic path,
which also writes the error message, unchanged.

Typer builds its converter lazily, per parameter (`get_runtime_param`), including for
the `--help` option it creates on the fly; `install()` puts ours first in that place.
"""

from __future__ import annotations

import re
from typing import Any, Final, get_args, get_origin

from typer._click import Context
from typer._coercion import RuntimeParam, build_runtime_param
from typer.core import _TyperParameter

_INT: Final = re.compile(r"[+-]?[0-9]+")
_FLOAT: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PLAIN: Final = (str, int, float, bool)
_MISS: Final = object()


def _convert(kind: Any, value: Any) -> Any:
    """`value` as `kind` when it is unambiguous, else _MISS (let pydantic decide)."""
    if kind is str:
        return value if isinstance(value, str) else _MISS
    if kind is bool:
        return value if isinstance(value, bool) else _MISS
    if isinstance(value, bool):
        return _MISS
    if kind is int:
        if isinstance(value, int):
            return value
        if isinstance(value, str) and _INT.fullmatch(value) and len(value) < 100:
            return int(value)
    elif kind is float:
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str) and _FLOAT.fullmatch(value) and len(value) < 100:
            return float(value)
    return _MISS


def _is_list(annotation: Any) -> bool:
    origin: Any = get_origin(annotation)
    return origin is list


def _plain_kind(param: _TyperParameter) -> Any:
    """The element type of a parameter that _Plain can convert, or None."""
    desc = param.type_descriptor
    info = desc.parameter_info
    if (desc.file_annotation is not None or info.parser is not None
            or getattr(info, "click_type", None) is not None
            or info.min is not None or info.max is not None):
        return None
    kind = desc.annotation
    if _is_list(kind):
        (kind,) = get_args(kind) or (None,)
    return kind if kind in _PLAIN else None


class _Plain(RuntimeParam):
    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        kind = self.annotation
        if _is_list(kind):
            kind = get_args(kind)[0]
            items = value if isinstance(value, list | tuple) else [value]
            out = [_convert(kind, item) for item in items]
            if not any(item is _MISS for item in out):
                return out
        elif (one := _convert(kind, value)) is not _MISS:
            return one
        slow = build_runtime_param(param.type_descriptor)  # pydantic: its value, its message
        return slow._coerce_value(value, param=param, ctx=ctx)


def install() -> None:
    """Make Typer use `_Plain` for every plain parameter (once per process)."""
    if getattr(_TyperParameter, "_sora_plain", False):
        return
    typer_way = _TyperParameter.get_runtime_param

    def get_runtime_param(self: _TyperParameter) -> RuntimeParam:
        if self._runtime_param is None and _plain_kind(self) is not None:
            desc = self.type_descriptor
            self._runtime_param = _Plain(annotation=desc.annotation,
                                         parameter_info=desc.parameter_info)
        return typer_way(self)

    setattr(_TyperParameter, "get_runtime_param", get_runtime_param)  # noqa: B010
    setattr(_TyperParameter, "_sora_plain", True)  # noqa: B010
