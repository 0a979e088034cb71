"""Analysis of a corpus's content distribution and density structure, before and after reshaping.

:func:`analyze` is the library function behind ``curate analyze``; it writes a report folder with
``summary.json``, PNG figures and ``index.html``.
"""

from curate.analyze.report import Report, analyze

__all__ = ["Report", "analyze"]
