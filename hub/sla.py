"""SLA deadlines and the scheduler that enforces them.

Deadlines come from ``HubConfig.sla.rules`` (per type × severity × level, most specific
match wins), counted in working time (the calendar: working hours, weekends, public
holidays, make-up days 调休, in the hub's time zone) or on the wall clock (emergencies).

The scheduler keeps no state in memory: each tick looks in the database for what is late
and changes it with a conditional update inside a locked transaction, so a deadline is
acted on exactly once even with several hub workers ticking at once; a lease keeps the
workers from doing the same scan in parallel.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from hub.calendar import WorkCalendar, add_duration
from shaobing.config import SlaConfig, SlaRule

if TYPE_CHECKING:
    from hub.incidents import IncidentEngine
    from hub.store import Store
    from hub.workorders import WorkOrders

__all__ = ["SlaPolicy", "Scheduler"]

log = logging.getLogger(__name__)

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


class Scheduler:
    """Looks for late work and acts on it; runs ``tick`` in a thread of the serve process.

    Args:
        store: the store (its clock decides what is late).
        orders: the work orders.
        incidents: the incident engine (recovers events whose processing was interrupted).
        config: SLA settings.
        holder: this worker's name (lease holder).
        use_lease: take the scheduler lease before a tick (off only to test the
            exactly-once guards themselves).
    """

    def __init__(
        self,
        store: Store,
        orders: WorkOrders,
        incidents: IncidentEngine | None,
        config: SlaConfig,
        holder: str,
        use_lease: bool = True,
    ) -> None:
        self.store = store
        self.orders = orders
        self.incidents = incidents
        self.config = config
        self.holder = holder
        self.use_lease = use_lease
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0

    def tick(self) -> dict[str, Any]:
        """One pass: recover events, ack timeouts, accept/handle deadlines, rating window."""
        if self.use_lease and not self.store.acquire_lease(
            "scheduler", self.holder, self.config.lease_s
        ):
            return {"skipped": True}
        done: dict[str, Any] = {"skipped": False}
        if self.incidents is not None:
            done["recovered"] = self.incidents.process_pending()
        done["ack_escalated"] = self.orders.escalate_unacknowledged()
        done["accept_late"] = self.orders.act_on_accept_deadlines()
        done["handle_late"] = self.orders.act_on_handle_deadlines()
        done["auto_closed"] = self.orders.close_unrated()
        self.ticks += 1
        return done

    def start(self) -> None:
        """Tick every ``tick_s`` in a background thread."""
        self._thread = threading.Thread(target=self._loop, name="hub-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(self.config.tick_s):
            try:
                self.tick()
            except Exception:
                log.exception("scheduler tick failed")
