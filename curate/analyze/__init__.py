"""Analysis of a corpus's content distribution and density structure, before and after reshaping.

:func:`analyze` is the library function behind ``curate analyze``; it writes a report folder with
``summary.json``, PNG figures and ``index.html``. Its parameters are
:class:`~curate.analyze.params.AnalyzeParams`. The names below load on first use, so the command
line can read the parameters without importing the analysis.
"""

from __future__ import annotations

from curate.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "curate.analyze.report": ["Report", "analyze"],
    },
)
