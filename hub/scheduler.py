"""The scheduler that enforces the SLA deadlines.

The scheduler keeps no state in memory: each tick looks in the database for what is late
and changes it with a conditional update inside a locked transaction, so a deadline is
acted on exactly once even with several hub workers ticking at once; a lease keeps the
workers from doing the same scan in parallel.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from hub.incidents import IncidentEngine
from hub.store import Store
from hub.workorders import WorkOrders
from shaobing.config import SlaConfig

__all__ = ["Scheduler"]

log = logging.getLogger(__name__)


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
