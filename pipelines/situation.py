"""The life of one situation: ``active`` once, ``update`` while it lasts, ``cleared`` once.

A pipeline keeps one :class:`Situation` per real situation it reports (a fire on a camera,
a sensor's alarm, a parked vehicle, a person in the water) and builds every finding of it
with :meth:`Situation.report`, which fills the type, severity, state and incident key and
refuses a finding out of order (an update before the situation is active, anything after
it is cleared, a second ``active``). Single events (an intrusion) are situations that are
only ever reported active. What decides *when* to report stays with each pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipelines.base import Finding, Severity, State

__all__ = ["Situation", "SituationError"]

_ALLOWED: dict[State | None, frozenset[State]] = {
    None: frozenset({"active"}),
    "active": frozenset({"update", "cleared"}),
    "update": frozenset({"update", "cleared"}),
    "cleared": frozenset(),
}


class SituationError(ValueError):
    """A finding out of order for its situation (e.g. an update after ``cleared``)."""


@dataclass
class Situation:
    """One situation's identity (type, severity, incident key) and the last state reported.

    Attributes:
        type: taxonomy code of its findings.
        severity: severity of its findings.
        key: incident key, the same on every finding of the situation.
        state: the last state reported; None before the first (``active``) finding. A
            pipeline that restores an open situation after a restart creates it with
            ``state="active"``.
    """

    type: str
    severity: Severity
    key: str
    state: State | None = None

    @property
    def is_open(self) -> bool:
        """Reported active and not cleared yet."""
        return self.state in ("active", "update")

    def report(
        self,
        state: State,
        *,
        occurred_at: datetime,
        confidence: float,
        summary: str,
        **details: Any,
    ) -> Finding:
        """The finding that moves the situation to ``state``.

        Args:
            state: ``active`` (first), ``update`` (while open) or ``cleared`` (last).
            occurred_at: when.
            confidence: the finding's confidence.
            summary: the line a worker reads.
            **details: the other :class:`~pipelines.base.Finding` fields (attributes,
                location, boxes, snapshot …).

        Raises:
            SituationError: ``state`` cannot follow the situation's current state.
        """
        if state not in _ALLOWED[self.state]:
            raise SituationError(
                f"{self.key}: expected one of {sorted(_ALLOWED[self.state]) or 'nothing'} "
                f"after {self.state or 'no finding'}, found {state}"
            )
        self.state = state
        return Finding(
            type=self.type,
            severity=self.severity,
            state=state,
            incident_key=self.key,
            occurred_at=occurred_at,
            confidence=confidence,
            summary=summary,
            **details,
        )
