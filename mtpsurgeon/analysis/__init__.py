"""Graph analysis: reachability, orphans, MTP findings, link checks, verdict.

``analyze(file)`` returns a :class:`~mtpsurgeon.analysis.report.Report`
that ``inspect`` renders and that ``extract``/``restore`` act on.
"""
from mtpsurgeon.analysis.report import Report, analyze

__all__ = ["Report", "analyze"]
