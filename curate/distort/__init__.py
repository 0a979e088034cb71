"""KADID-style distortions: the 25 types of KADID-10k / KADIS-700k, one function per type.

``DISTORTIONS[n]`` (or ``get_distortion("jpeg")``) is a callable ``(image, level, rng) -> image`` on
uint8 H x W x 3 arrays; ``distortion_rng(seed, reference, type, level)`` gives the generator that
makes each output reproducible on its own. ``curate.distort.synthesize`` renders whole sets;
``curate.distort.presets`` holds the type presets per target dataset.

The names below are loaded on first use, so reading the presets (the command line does at start)
does not import the image filters.
"""

from __future__ import annotations

from curate.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "curate.distort.registry": [
            "BY_NAME",
            "DISTORTIONS",
            "LEVELS",
            "MAX_PIXELS",
            "NON_MONOTONIC_TYPES",
            "Distortion",
            "check_image",
            "distort",
            "distortion_rng",
            "get_distortion",
        ],
    },
)
