"""``shaobing hub serve``: migrate, subscribe, serve the API and dashboard."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any

from shaobing.config import ConfigError, HubConfig, load_hub_config, split_hostport

log = logging.getLogger(__name__)


def apply_overrides(
    cfg: HubConfig, db: str | None, broker: str | None, http: str | None
) -> HubConfig:
    """Command-line overrides of the config (``--db``, ``--broker``, ``--http``).

    ``$SHAOBING_HUB_ID`` names this worker when several run from one config file
    (each needs its own MQTT client id and scheduler lease holder).
    """
    update: dict[str, Any] = {}
    worker_id = os.environ.get("SHAOBING_HUB_ID")
    if worker_id:
        update["hub_id"] = worker_id
    if db:
        update["db"] = db
    if broker:
        update["broker"] = cfg.broker.model_copy(update={"url": broker})
    if http:
        update["http"] = http
    return cfg.model_copy(update=update) if update else cfg


class HubServer:
    """The hub process: store + ingest + incidents/work orders + scheduler + notifier + HTTP.

    Committed events flow from ingest (``on_committed`` wakes the incident worker, which
    takes new events from the database) into incidents and work orders; the SLA scheduler
    and the notification worker run as threads of this process too (their state lives in
    the database, so several hub processes can run side by side).
    """

    def __init__(self, cfg: HubConfig) -> None:
        import os

        from hub.app import build_core, create_app
        from hub.incidents import IncidentWorker
        from hub.ingest import Ingest
        from hub.notify import NotificationWorker
        from hub.sla import Scheduler
        from hub.store import Store

        self.cfg = cfg
        self.store = Store(cfg.db_url(), clock_skew_s=cfg.ingest.clock_skew_s)
        self.store.migrate()
        self.core = build_core(cfg, self.store)
        self.incident_worker = IncidentWorker(self.core.incidents)
        self.ingest = Ingest(cfg, self.store, on_committed=self.incident_worker.on_committed)
        holder = f"{cfg.hub_id}:{os.getpid()}"
        self.scheduler = Scheduler(
            self.store, self.core.orders, self.core.incidents, cfg.sla, holder
        )
        self.notifier = NotificationWorker(self.store, cfg, holder=holder)
        self.app = create_app(
            cfg, self.store, lambda: self.ingest.ready, self.core, self.ingest.metrics
        )
        self._server: Any = None

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set."""
        import uvicorn

        host, port = split_hostport(self.cfg.http)
        self.incident_worker.start()
        self.ingest.start()
        self.scheduler.start()
        self.notifier.start()
        config = uvicorn.Config(
            self.app, host=host, port=port, log_level="warning", lifespan="off", access_log=False
        )
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._server = server
        thread = threading.Thread(target=server.run, name="http", daemon=True)
        thread.start()
        print(
            f"shaobing hub: serving http://{host}:{port}/ (db {self._safe_db()}, broker {self.cfg.broker.url})",
            file=sys.stderr,
            flush=True,
        )
        try:
            while not stop.is_set() and thread.is_alive():
                stop.wait(0.5)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            self.ingest.stop()
            self.incident_worker.stop()
            self.scheduler.stop()
            self.notifier.stop()
            self.store.close()

    def _safe_db(self) -> str:
        url = self.cfg.db
        if "@" in url:  # hide the password
            scheme, rest = url.split("://", 1)
            return f"{scheme}://***@{rest.split('@', 1)[1]}"
        return url


def serve_command(args: argparse.Namespace) -> int:
    """Run the hub until Ctrl-C / SIGTERM or ``--duration``."""
    try:
        cfg = apply_overrides(load_hub_config(args.config), args.db, args.broker, args.http)
        split_hostport(cfg.http)
    except ConfigError as exc:
        for issue in exc.issues:
            print(str(issue), file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"shaobing hub serve: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.duration:
        threading.Timer(args.duration, stop.set).start()
    try:
        server = HubServer(cfg)
    except ConfigError as exc:  # registry or taxonomy file
        for issue in exc.issues:
            print(str(issue), file=sys.stderr)
        return 2
    except Exception as exc:  # database unreachable, migration failure …
        log.exception("hub start failed")
        print(f"shaobing hub serve: cannot start: {exc}", file=sys.stderr)
        return 1
    server.run(stop)
    return 0
