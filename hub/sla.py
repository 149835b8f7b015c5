"""SLA deadlines: the policy (the scheduler that enforces them is :mod:`hub.scheduler`).

Deadlines come from ``HubConfig.sla.rules`` (per type × severity × level, most specific
match wins), counted in working time (the calendar: working hours, weekends, public
holidays, make-up days 调休, in the hub's time zone) or on the wall clock (emergencies).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hub.calendar import WorkCalendar, add_duration
from shaobing.config import SlaConfig, SlaRule

__all__ = ["SlaPolicy"]

_FALLBACK = SlaRule(accept_min=240, handle_min=2880, working_time=True)


class SlaPolicy:
    """Deadlines for an order.

    Args:
        config: SLA rules and calendar.
        tz: the hub's time zone.
    """

    def __init__(self, config: SlaConfig, tz: str) -> None:
        self.config = config
        self.calendar = WorkCalendar(config.calendar, tz)

    def rule(self, type_: str, severity: str, level: str) -> SlaRule:
        """The most specific matching rule (ties: the first listed)."""
        best: tuple[int, int, SlaRule] | None = None
        for i, r in enumerate(self.config.rules):
            if (
                (r.type and r.type != type_)
                or (r.severity and r.severity != severity)
                or (r.level and r.level != level)
            ):
                continue
            score = (r.type is not None) * 4 + (r.severity is not None) * 2 + (r.level is not None)
            if best is None or score > best[0] or (score == best[0] and i < best[1]):
                best = (score, i, r)
        return best[2] if best else _FALLBACK

    def deadlines(
        self, start: datetime, type_: str, severity: str, level: str
    ) -> tuple[datetime, datetime]:
        """(accept by, handle by) for an order dispatched at ``start``."""
        r = self.rule(type_, severity, level)
        return (
            add_duration(self.calendar, start, r.accept_min, r.working_time),
            add_duration(self.calendar, start, r.handle_min, r.working_time),
        )

    def accept_deadline(self, start: datetime, type_: str, severity: str, level: str) -> datetime:
        """Accept-by for an order (re)assigned at ``start``."""
        return self.deadlines(start, type_, severity, level)[0]

    def rating_deadline(self, start: datetime) -> datetime:
        """When a verified order without a rating closes."""
        return start + timedelta(hours=self.config.rating_window_h)
