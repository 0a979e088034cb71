"""The one progress helper: a bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


class Progress:
    """Count work done; show a tqdm bar on a terminal, else a line every ``interval`` seconds.

    Use as a context manager; ``update(n)`` adds finished units. ``quiet=True`` prints nothing.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "it",
        *,
        quiet: bool = False,
        interval: float = 10.0,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.quiet = quiet
        self.interval = interval
        self.done = 0
        self._bar = None
        self._start = time.perf_counter()
        self._last = self._start
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.perf_counter()
        if now - self._last >= self.interval:
            self._last = now
            self._line(now)

    def rate(self) -> float:
        elapsed = time.perf_counter() - self._start
        return self.done / elapsed if elapsed > 0 else 0.0

    def _line(self, now: float) -> None:
        total = f"/{self.total}" if self.total is not None else ""
        print(
            f"{self.desc}: {self.done}{total} {self.unit} "
            f"({self.rate():.1f} {self.unit}/s, {now - self._start:.0f}s)",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(
    items: Iterable[T], total: int | None, desc: str, unit: str = "it", *, quiet: bool = False
) -> Iterator[T]:
    """Iterate ``items`` while reporting progress, one unit per item."""
    with Progress(total, desc, unit, quiet=quiet) as bar:
        for item in items:
            yield item
            bar.update(1)
