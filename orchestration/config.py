"""Dagster run config derived from a stage's settings dataclass: no field is copied by hand.

`config_from(Settings)` makes a `dg.Config` whose fields are the dataclass's, with its defaults,
its one-line docs as launchpad descriptions and its `Literal` choices (a misspelt value fails at
launch, naming the allowed ones). Tuples become lists in the run config and tuples again in
`settings()`; mappings of tuples likewise.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import types
import typing
from typing import Any

import dagster as dg
from pydantic import Field, create_model

from common.settings import doc_of, type_hints


def _config_type(annotation: Any) -> Any:
    """The run-config type of a settings annotation: tuple[X, ...] -> list[X], Mapping -> dict,
    Literal -> Enum (Dagster takes an Enum inside a list or an Optional, not a Literal)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        # Named as Dagster names a Literal's enum: a refused value's message lists the choices.
        return enum.Enum(f"Literal[{', '.join(map(repr, args))}]", {str(v): v for v in args})
    if origin is tuple:
        return list[_config_type(args[0])]
    if origin in (collections.abc.Mapping, dict):
        return dict[_config_type(args[0]), _config_type(args[1])]
    if origin in (typing.Union, types.UnionType):
        converted = tuple(_config_type(a) for a in args)
        return typing.Union[converted]  # noqa: UP007 (built from a runtime tuple)
    return annotation


def _to_config(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_config(v) for v in value]
    if isinstance(value, collections.abc.Mapping):
        return {k: _to_config(v) for k, v in value.items()}
    return value


def _to_settings(value: Any, annotation: Any) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if value is None:
        return None
    if origin is tuple:
        return tuple(_to_settings(v, args[0]) for v in value)
    if isinstance(value, enum.Enum):
        return value.value
    if origin in (collections.abc.Mapping, dict):
        return {k: _to_settings(v, args[1]) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        for a in args:
            if a is not type(None):
                return _to_settings(value, a)
    return value


def config_from(settings_cls: type, name: str, description: str | None = None) -> type[dg.Config]:
    """A `dg.Config` class named `name` with one field per field of `settings_cls`."""
    hints = type_hints(settings_cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(settings_cls):
        if not f.init:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        fields[f.name] = (
            _config_type(hints[f.name]),
            Field(default=_to_config(default), description=doc_of(f) or None),
        )

    def settings(self: dg.Config) -> Any:
        """The settings dataclass these values describe (validated by its __post_init__)."""
        return settings_cls(**{k: _to_settings(getattr(self, k), hints[k]) for k in fields})

    cls = create_model(name, __base__=dg.Config, __doc__=description or settings_cls.__doc__,
                       **fields)  # fmt: skip
    cls.settings = settings  # type: ignore[attr-defined]
    return cls
