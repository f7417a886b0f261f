"""Settings dataclasses that document themselves: one default and one line of doc per field.

A stage's settings dataclass is the one source of each setting: `setting(default, doc)` stores
the doc in the field's metadata, `check_choices` validates `Literal` fields with an error that
names the allowed values, and the Dagster run config is derived from the dataclass
(`orchestration/config.py`), so a default or its doc is written once.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any, Literal

_DOC = "doc"


def setting(default: Any = dataclasses.MISSING, doc: str = "", *,
            factory: Callable[[], Any] | None = None) -> Any:  # fmt: skip
    """A dataclass field with its one-line doc; `factory` for mutable defaults."""
    if not doc:
        raise ValueError("every setting needs a doc")
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={_DOC: doc})
    return dataclasses.field(default=default, metadata={_DOC: doc})


def doc_of(field: dataclasses.Field) -> str:
    return str(field.metadata.get(_DOC, ""))


def type_hints(cls: type) -> dict[str, Any]:
    """The dataclass's field annotations, resolved (modules use `from __future__ import
    annotations`, so the raw annotations are strings)."""
    return typing.get_type_hints(cls)


def literal_choices(annotation: Any) -> tuple[Any, ...] | None:
    """The allowed values of a `Literal[...]` (or `Literal[...] | None`) annotation."""
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    if typing.get_origin(annotation) in (tuple, list):  # tuple[Literal[...], ...]
        return literal_choices(typing.get_args(annotation)[0])
    args = typing.get_args(annotation)
    if args and type(None) in args:
        for a in args:
            if typing.get_origin(a) is Literal:
                return typing.get_args(a)
    return None


def check_choices(obj: Any) -> None:
    """Raise ValueError naming the field and its allowed values where a `Literal` field holds
    another value (None passes where the annotation allows it). Call from __post_init__."""
    hints = type_hints(type(obj))
    for f in dataclasses.fields(obj):
        choices = literal_choices(hints[f.name])
        if choices is None:
            continue
        value = getattr(obj, f.name)
        if value is None and type(None) in typing.get_args(hints[f.name]):
            continue
        values = (
            value if isinstance(value, tuple | list) and not isinstance(value, str) else (value,)
        )
        for v in values:
            if v not in choices:
                allowed = ", ".join(repr(c) for c in choices)
                raise ValueError(
                    f"{type(obj).__name__}.{f.name} = {v!r}: expected one of {allowed}"
                )
