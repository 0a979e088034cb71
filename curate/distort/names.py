"""KADID file names: a reference's copy and its distorted versions, as synthesize writes them."""

from __future__ import annotations


def output_name(key: str, distortion: int, level: int) -> str:
    """KADID file name of one distorted image: ``{key}_{tt:02d}_{ll:02d}.png``."""
    return f"{key}_{distortion:02d}_{level:02d}.png"


def reference_name(key: str) -> str:
    """File name of a reference's copy: ``{key}.png``."""
    return f"{key}.png"
