"""Severity: the one definition of the three levels, their order and how to combine them.

``shaobing.contract`` re-exports :data:`Severity` (the wire type); the taxonomy, the
configuration, the pipelines, the edge and the hub all use these names.
"""

from __future__ import annotations

from typing import Literal, get_args

Severity = Literal["normal", "urgent", "emergency"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
"""Lowest first: normal < urgent < emergency."""


def severity_rank(severity: str) -> int:
    """0 for normal, 1 for urgent, 2 for emergency (ValueError for anything else)."""
    return SEVERITIES.index(severity)


def max_severity(*severities: str) -> Severity:
    """The highest of the given severities."""
    return as_severity(max(severities, key=severity_rank))


def as_severity(value: str) -> Severity:
    """``value`` as a :data:`Severity` (ValueError when it is none of the three)."""
    for severity in SEVERITIES:
        if value == severity:
            return severity
    raise ValueError(f"severity: expected normal, urgent or emergency, found {value!r}")
