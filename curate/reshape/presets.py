"""Distortion-type presets per target dataset (METHOD.md, "Distortion-type presets per target")."""

from __future__ import annotations

from curate.errors import CurateError

ALL_TYPES: tuple[int, ...] = tuple(range(1, 26))

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


def parse_types(spec: str | None, *, option: str = "--types") -> tuple[int, ...]:
    """A preset name or a comma list of KADID type numbers (``1,3,10``) -> sorted unique types."""
    if spec is None or spec == "":
        return ALL_TYPES
    name = spec.strip().lower()
    name = ALIASES.get(name, name)
    if name in PRESETS:
        return PRESETS[name]
    try:
        types = sorted({int(part) for part in name.split(",") if part.strip()})
    except ValueError:
        raise CurateError(
            f"{option} {spec!r}: not a preset ({', '.join(sorted(PRESETS))}) nor a list like 1,3,10"
        ) from None
    bad = [t for t in types if t not in ALL_TYPES]
    if bad or not types:
        raise CurateError(f"{option} {spec!r}: KADID types are 1-25 (got {bad or 'none'})")
    return tuple(types)


def parse_levels(spec: str | None, *, option: str = "--levels", max_level: int = 5) -> tuple[int, ...]:
    """A comma list of levels (``1,3,5``) -> sorted unique levels within 1..max_level."""
    if spec is None or spec == "":
        return tuple(range(1, max_level + 1))
    try:
        levels = sorted({int(part) for part in spec.split(",") if part.strip()})
    except ValueError:
        raise CurateError(f"{option} {spec!r}: expected a list like 1,3,5") from None
    bad = [lv for lv in levels if not 1 <= lv <= max_level]
    if bad or not levels:
        raise CurateError(f"{option} {spec!r}: levels are 1-{max_level} (got {bad or 'none'})")
    return tuple(levels)
