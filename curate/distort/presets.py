"""Distortion-type presets per target dataset (METHOD.md, "Distortion-type presets per target"),
and the parsers of ``--types`` and ``--levels`` that every verb uses."""

from __future__ import annotations

from curate.errors import ParamError

ALL_TYPES: tuple[int, ...] = tuple(range(1, 26))  # KADID's distortion types (the registry's keys)
LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)  # KADID's levels, 1 = mildest

PRESETS: dict[str, tuple[int, ...]] = {
    "livec": (1, 3, 10, 17, 18, 25),
    "koniq": (1, 3, 16, 17, 18, 25),
    "bid": (1, 3, 9, 21, 23, 25),
    "pipal1": (1, 2, 3, 9, 17, 18, 25),
    "pipal2": (1, 2, 3, 9, 17, 23),
    "pipal3": (1, 3, 16, 17, 18, 19, 25),
    "pipal4": (1, 3, 7, 9, 10, 17, 18, 25),
    "pipal5": (1, 2, 3, 4, 9),
    "pipal6": (1, 2, 3, 9, 10, 11, 12, 16, 17, 18, 19, 21, 22, 25),
    "live": ALL_TYPES,
    "csiq": ALL_TYPES,
    "tid2013": ALL_TYPES,
    "kadid": ALL_TYPES,
    "all": ALL_TYPES,
}

# Names users reach for that mean the same preset (the release mixed "koniq" and "koniq-10k").
ALIASES: dict[str, str] = {
    "koniq-10k": "koniq",
    "koniq10k": "koniq",
    "kadid10k": "kadid",
    "kadid-10k": "kadid",
}


def parse_types(spec: str | tuple[int, ...] | list[int] | None, *, option: str = "--types") -> tuple[int, ...]:
    """A preset name, a comma list of KADID type numbers (``1,3,10``) or a sequence of them ->
    sorted unique types."""
    if spec is None or spec == "":
        return ALL_TYPES
    if not isinstance(spec, str):
        return _checked_types(sorted({int(t) for t in spec}), spec, option)
    name = spec.strip().lower()
    name = ALIASES.get(name, name)
    if name in PRESETS:
        return PRESETS[name]
    try:
        types = sorted({int(part) for part in name.split(",") if part.strip()})
    except ValueError:
        raise ParamError(
            f"{option} {spec!r}: not a preset ({', '.join(sorted(PRESETS))}) nor a list like 1,3,10"
        ) from None
    return _checked_types(types, spec, option)


def _checked_types(types: list[int], spec: object, option: str) -> tuple[int, ...]:
    bad = [t for t in types if t not in ALL_TYPES]
    if bad or not types:
        raise ParamError(f"{option} {spec!r}: KADID types are {ALL_TYPES[0]}-{ALL_TYPES[-1]} (got {bad or 'none'})")
    return tuple(types)


def parse_levels(spec: str | tuple[int, ...] | list[int] | None, *, option: str = "--levels") -> tuple[int, ...]:
    """A comma list of levels (``1,3,5``) or a sequence of them -> sorted unique levels (1-5)."""
    if spec is None or spec == "":
        return LEVELS
    try:
        parts = spec.split(",") if isinstance(spec, str) else list(spec)
        levels = sorted({int(part) for part in parts if str(part).strip()})
    except ValueError:
        raise ParamError(f"{option} {spec!r}: expected a list like 1,3,5") from None
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad or not levels:
        raise ParamError(f"{option} {spec!r}: levels are {LEVELS[0]}-{LEVELS[-1]} (got {bad or 'none'})")
    return tuple(levels)
