"""Parameter objects: where each parameter's default, range and choices are stated, once.

A parameter object is a frozen dataclass whose fields are declared with :func:`param`: the default,
a help line, a numeric range or a list of choices, and the option name users know it by. The object
parses its inputs (a ``"1,3,5"`` string or a tuple) and validates itself once, in ``__post_init__``
(:func:`check_fields`), raising :class:`~curate.errors.ParamError` naming the option. The command
line builds its options from the same fields (``curate.cli``), so its defaults, ranges and choices
are these, and ``--help`` shows what the library does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from curate.errors import ParamError

SPEC_KEY = "curate_param"


@dataclass(frozen=True)
class Spec:
    """What a parameter accepts.

    ``kind``: ``int``, ``float``, ``str``, ``bool`` or a name the CLI knows (``"types"``,
    ``"levels"``, ``"device"``: strings parsed by the object). ``low``/``high``: inclusive bounds
    (exclusive with ``low_open``/``high_open``). ``choices``: the allowed strings, or a function
    returning them (a registry read when asked). ``option``: the name in messages and on the command
    line (default ``--field-name``).
    """

    help: str
    kind: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None
    option: str | None = None

    def allowed(self) -> tuple[str, ...] | None:
        if self.choices is None:
            return None
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def range_text(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"above {self.low:g}" if self.low_open else f"at least {self.low:g}")
        if self.high is not None:
            parts.append(f"below {self.high:g}" if self.high_open else f"at most {self.high:g}")
        return " and ".join(parts)

    def check(self, option: str, value: Any) -> None:
        """Raise :class:`ParamError` when ``value`` is outside the range or not a choice."""
        if value is None:
            return
        allowed = self.allowed()
        if allowed is not None and value not in allowed:
            raise ParamError(f"{option} {value!r}: expected one of {', '.join(allowed)}")
        if self.low is None and self.high is None:
            return
        low_bad = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        high_bad = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if low_bad or high_bad:
            raise ParamError(f"{option} {value}: must be {self.range_text()}")


def param(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    kind: Any = None,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None,
    option: str | None = None,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field carrying its :class:`Spec`; ``kind`` defaults to the default's type."""
    if kind is None and default is not dataclasses.MISSING and default is not None:
        kind = type(default)
    spec = Spec(help, kind, low, high, low_open, high_open, choices, option)
    return dataclasses.field(default=default, default_factory=default_factory, metadata={SPEC_KEY: spec})


def specs(cls_or_obj: Any) -> dict[str, Spec]:
    """The :class:`Spec` of every declared field of a parameter class (or object), by field name."""
    return {f.name: f.metadata[SPEC_KEY] for f in dataclasses.fields(cls_or_obj) if SPEC_KEY in f.metadata}


def option_name(cls_or_obj: Any, name: str) -> str:
    """The option a field is known by: its spec's ``option``, else ``--field-name``."""
    return specs(cls_or_obj)[name].option or "--" + name.replace("_", "-")


def default_of(cls: Any, name: str) -> Any:
    """The declared default of field ``name`` (calling its factory when it has one)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            raise KeyError(f"{cls.__name__}.{name} has no default")
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def check_fields(obj: Any) -> None:
    """Check every declared field of ``obj`` against its range and choices."""
    for name, spec in specs(obj).items():
        spec.check(option_name(obj, name), getattr(obj, name))


def set_field(obj: Any, name: str, value: Any) -> None:
    """Assign a parsed value in ``__post_init__`` of a frozen dataclass."""
    object.__setattr__(obj, name, value)


def pick(values: Mapping[str, Any], cls: Any) -> dict[str, Any]:
    """The entries of ``values`` that are fields of ``cls`` (e.g. a manifest's recorded params)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items() if k in names}
