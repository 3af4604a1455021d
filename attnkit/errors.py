"""One base class for every error attnkit raises on bad input: `except attnkit.AttnkitError`.

Each part of the package raises its own subclass (`AttentionInputError`, `ImportanceInputError`,
`MetricInputError`, `ReportError`, `ExplainError`, ...), whose message names the problem and the
fix. The base derives from `ValueError`, so code written against the old classes keeps working.
"""

from __future__ import annotations


class AttnkitError(ValueError):
    """Input attnkit cannot work with; the message says what is wrong and how to fix it."""
