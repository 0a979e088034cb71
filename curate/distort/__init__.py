"""KADID-style distortions: the 25 types of KADID-10k / KADIS-700k, one function per type.

``DISTORTIONS[n]`` (or ``get_distortion("jpeg")``) is a callable ``(image, level, rng) -> image`` on
uint8 H x W x 3 arrays; ``distortion_rng(seed, reference, type, level)`` gives the generator that
makes each output reproducible on its own. ``curate.distort.synthesize`` renders whole sets.
"""

from curate.distort.registry import (
    BY_NAME,
    DISTORTIONS,
    LEVELS,
    MAX_PIXELS,
    NON_MONOTONIC_TYPES,
    Distortion,
    check_image,
    distort,
    distortion_rng,
    get_distortion,
)

__all__ = [
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
]
