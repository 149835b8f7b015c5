"""The hub's health: is it really storing what arrives?

``/healthz`` answers 503 with the reasons when any of these holds:

- the database is not migrated, or the MQTT event subscription is not acknowledged;
- commits have failed for longer than ``health.commit_fail_s`` (a read-only or full
  database, a lost connection), seen by ingest itself and by a tiny write probe every
  ``health.probe_interval_s``, so an idle hub knows too;
- the ingest worker has not turned for longer than ``health.stuck_s``;
- the disk under the database or the evidence has less than ``health.disk_min_free_mb``.

Each cause is counted every time it starts (``shaobing_hub_unhealthy_total{cause}`` in
``/metrics``).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hub.store import Store
    from shaobing.config import HubConfig

__all__ = ["CAUSES", "HealthMonitor", "IngestHealth"]

log = logging.getLogger(__name__)

CAUSES: tuple[str, ...] = (
    "database_not_migrated",
    "subscription_lost",
    "commits_failing",
    "write_probe_failing",
    "ingest_stuck",
    "disk_low",
)


class IngestHealth(Protocol):
    """What the monitor reads from ingest."""

    heartbeat: float
    commit_failing_since: float | None
    last_commit_error: str

    @property
    def ready(self) -> bool:
        """The event subscription is acknowledged."""
        ...


@dataclass
class _State:
    active: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CAUSES, 0))


class HealthMonitor:
    """Probes the store in the background and judges the hub's health on demand.

    Args:
        config: the hub config (``health`` thresholds, database and evidence paths).
        store: the hub's store (write probe, migration check).
        ingest: the ingest worker, when this process runs one.
        clock: monotonic seconds (tests may pass their own).
    """

    def __init__(
        self,
        config: HubConfig,
        store: Store,
        ingest: IngestHealth | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.opts = config.health
        self.store = store
        self.ingest = ingest
        self.clock = clock
        self.probe_failing_since: float | None = None
        self.probe_error = ""
        self._state = _State()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._paths = self._watched_paths()

    def _watched_paths(self) -> list[Path]:
        paths: list[Path] = []
        url = self.config.db_url()
        if url.startswith("sqlite:///") and ":memory:" not in url:
            paths.append(Path(url[len("sqlite:///") :]).parent)
        if not self.config.evidence_url:
            paths.append(self.config.resolve(self.config.evidence_dir))
        return paths

    # ------------------------------------------------------------------ probing

    def start(self) -> None:
        """Probe in a background thread until ``stop``."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hub-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop probing."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.probe()
            self._stop.wait(self.opts.probe_interval_s)

    def probe(self) -> None:
        """One write probe: a tiny transaction that proves the database still writes."""
        try:
            self.store.probe_write(f"health:{self.config.hub_id}")
        except Exception as exc:
            if self.probe_failing_since is None:
                self.probe_failing_since = self.clock()
                log.warning("hub health: the database does not write: %s", exc)
            self.probe_error = f"{type(exc).__name__}: {str(exc)[:300]}"
        else:
            if self.probe_failing_since is not None:
                log.info("hub health: the database writes again")
            self.probe_failing_since = None
            self.probe_error = ""

    # ------------------------------------------------------------------ judging

    def _disk_problems(self) -> list[str]:
        out = []
        limit = self.opts.disk_min_free_mb
        for path in self._paths:
            probe = path
            while not probe.exists() and probe != probe.parent:
                probe = probe.parent
            try:
                free_mb = shutil.disk_usage(probe).free / 2**20
            except OSError as exc:
                out.append(f"{path}: cannot read free space ({exc})")
                continue
            if free_mb < limit:
                out.append(f"{path}: {free_mb:.0f} MB free, expected at least {limit:.0f} MB")
        return out

    def causes(self) -> dict[str, str]:
        """The causes that hold now, each with its reason."""
        now = self.clock()
        found: dict[str, str] = {}
        if not self.store.is_migrated():
            found["database_not_migrated"] = "the database is unreachable or not migrated"
        ing = self.ingest
        if ing is not None:
            if not ing.ready:
                found["subscription_lost"] = "the MQTT event subscription is not acknowledged"
            since = ing.commit_failing_since
            if since is not None and now - since > self.opts.commit_fail_s:
                found["commits_failing"] = (
                    f"commits failing for {now - since:.0f} s: {ing.last_commit_error}"
                )
            idle = now - ing.heartbeat
            if idle > self.opts.stuck_s:
                found["ingest_stuck"] = f"the ingest worker has not turned for {idle:.0f} s"
        since = self.probe_failing_since
        if since is not None and now - since > self.opts.commit_fail_s:
            found["write_probe_failing"] = (
                f"the database refuses writes for {now - since:.0f} s: {self.probe_error}"
            )
        disk = self._disk_problems()
        if disk:
            found["disk_low"] = "; ".join(disk)
        with self._lock:
            for cause in found:
                if cause not in self._state.active:
                    self._state.counts[cause] += 1
            self._state.active = dict(found)
        return found

    def report(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, the JSON body of ``/healthz``)."""
        found = self.causes()
        body: dict[str, Any] = {
            "status": "ok" if not found else "unavailable",
            "database": "database_not_migrated" not in found,
            "mqtt_subscribed": "subscription_lost" not in found,
            "reasons": [f"{cause}: {why}" for cause, why in found.items()],
            "causes": sorted(found),
        }
        return not found, body

    def counts(self) -> dict[str, int]:
        """How often each cause has started (for ``/metrics``)."""
        with self._lock:
            return dict(self._state.counts)

    def active(self) -> dict[str, str]:
        """The causes found by the last judgement."""
        with self._lock:
            return dict(self._state.active)
