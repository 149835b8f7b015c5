"""``shaobing hub serve``: migrate, subscribe, serve the API and dashboard."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
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


def _issue(file: str, path: str, message: str) -> Any:
    from shaobing.config import ConfigIssue

    return ConfigIssue(file=file, line=None, path=path, message=message)


def _writable_folder_problem(folder: Path) -> str | None:
    """Why files cannot be created in ``folder`` (made on start when missing), or None."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def check_hub_config(cfg: HubConfig, filename: str) -> None:
    """What ``hub serve`` needs beyond the schema; ConfigError naming file and key.

    ``config validate`` runs the same checks, so both accept and refuse the same files:
    the registry and taxonomy files exist and load, ``db`` is a SQLite path that can be
    created or a PostgreSQL URL, ``http`` is HOST:PORT, the evidence folder is writable.
    """
    from shaobing.config import ConfigError

    issues = []
    for key in ("registry", "taxonomy", "https_cert_file", "https_key_file"):
        value = getattr(cfg, key)
        if value is None:
            continue
        target = cfg.resolve(value)
        if not target.is_file():
            issues.append(_issue(filename, key, f"expected an existing file, found no {target}"))
            continue
        if key.startswith("https_"):
            continue
        try:
            if key == "registry":
                from hub.registry import load_registry

                load_registry(target)
            else:
                from shaobing.taxonomy import load_taxonomy

                load_taxonomy(target)
        except ConfigError as exc:
            issues.extend(exc.issues)
        except ValueError as exc:
            issues.append(_issue(str(target), "", str(exc)))
    url = cfg.db_url()
    if url.startswith("sqlite:///"):
        if ":memory:" not in url:
            problem = _writable_folder_problem(Path(url[len("sqlite:///") :]).parent)
            if problem:
                issues.append(_issue(filename, "db", f"expected a database path that can be created: {problem}"))  # fmt: skip
    elif not url.startswith(("postgresql://", "postgresql+psycopg://")):
        issues.append(
            _issue(filename, "db", f"expected sqlite:///PATH or postgresql://…, found {cfg.db!r}")
        )
    try:
        split_hostport(cfg.http, "http")
    except ValueError as exc:
        issues.append(_issue(filename, "http", str(exc)))
    if not cfg.evidence_url:
        problem = _writable_folder_problem(cfg.resolve(cfg.evidence_dir))
        if problem:
            issues.append(
                _issue(filename, "evidence_dir", f"expected a writable folder: {problem}")
            )
    for key, env in (("ingest.ack_secret_env", cfg.ingest.ack_secret_env),):
        if env and not os.environ.get(env) and not cfg.ingest.ack_secret:
            issues.append(
                _issue(
                    filename,
                    key,
                    f"expected the environment variable {env} to hold the ack secret, found it unset",
                )  # fmt: skip
            )
    if issues:
        raise ConfigError(issues)


def check_hub_file(path: Path) -> None:
    """``shaobing config validate`` hook for hub configs (the checks of ``hub serve``)."""
    check_hub_config(load_hub_config(path), str(path))


def port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (taken, not ours), or None."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


class HubServer:
    """The hub process: store + ingest + incidents/work orders + scheduler + notifier + HTTP.

    Committed events flow from ingest (``on_committed`` hands them to the incident worker,
    which processes them as handed) into incidents and work orders; the SLA scheduler
    and the notification worker run as threads of this process too (their state lives in
    the database, so several hub processes can run side by side).
    """

    def __init__(self, cfg: HubConfig) -> None:
        import os

        from hub.app import build_core, create_app
        from hub.health import HealthMonitor
        from hub.incidents import IncidentWorker
        from hub.ingest import Ingest
        from hub.notify import NotificationWorker
        from hub.scheduler import Scheduler
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
        self.health = HealthMonitor(cfg, self.store, self.ingest)
        self.app = create_app(
            cfg, self.store, lambda: self.ingest.ready, self.core, self.ingest.metrics, self.health
        )
        self._server: Any = None

    def run(self, stop: threading.Event) -> int:
        """Serve until ``stop`` is set; returns the exit status (1: could not listen)."""
        import uvicorn

        host, port = split_hostport(self.cfg.http)
        problem = port_problem(host, port)
        if problem:
            print(f"shaobing hub serve: cannot listen on {host}:{port}: {problem}", file=sys.stderr)
            self.store.close()
            return 1
        self.incident_worker.start()
        self.ingest.start()
        self.scheduler.start()
        self.notifier.start()
        self.health.start()
        tls: dict[str, Any] = {}
        if self.cfg.https_cert_file:
            tls["ssl_certfile"] = str(self.cfg.resolve(self.cfg.https_cert_file))
            if self.cfg.https_key_file:
                tls["ssl_keyfile"] = str(self.cfg.resolve(self.cfg.https_key_file))
        # X-Forwarded-Proto from a reverse proxy on this host counts (Secure cookies)
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            proxy_headers=True,
            **tls,
        )
        server = uvicorn.Server(config)
        # the process handles SIGINT/SIGTERM itself (see serve_command)
        setattr(server, "install_signal_handlers", lambda: None)  # noqa: B010
        self._server = server
        thread = threading.Thread(target=server.run, name="http", daemon=True)
        thread.start()
        scheme = "https" if tls else "http"
        print(
            f"shaobing hub: serving {scheme}://{host}:{port}/ (db {self._safe_db()}, broker {self.cfg.broker.url})",
            file=sys.stderr,
            flush=True,
        )
        status = 0
        try:
            while not stop.is_set() and thread.is_alive():
                stop.wait(0.5)
            if not stop.is_set() and not server.started:
                print(
                    f"shaobing hub serve: the HTTP server on {host}:{port} did not start",
                    file=sys.stderr,
                )
                status = 1
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            self.health.stop()
            self.ingest.stop()
            self.incident_worker.stop()
            self.scheduler.stop()
            self.notifier.stop()
            self.store.close()
        return status

    def _safe_db(self) -> str:
        return self.safe_url(self.cfg.db)

    @staticmethod
    def safe_url(url: str) -> str:
        """A database URL without its password."""
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            return f"{scheme}://***@{rest.split('@', 1)[1]}"
        return url


def serve_command(args: argparse.Namespace) -> int:
    """Run the hub until Ctrl-C / SIGTERM or ``--duration``."""
    try:
        cfg = apply_overrides(load_hub_config(args.config), args.db, args.broker, args.http)
        check_hub_config(cfg, str(args.config))
    except ConfigError as exc:
        for issue in exc.issues:
            print(str(issue), file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"shaobing hub serve: {exc}", file=sys.stderr)
        return 2
    os.umask(0o077)  # database, evidence and uploads: readable by the hub's user alone
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
        log.debug("hub start failed", exc_info=True)
        print(
            f"shaobing hub serve: cannot start: db {HubServer.safe_url(cfg.db)}: "
            f"{type(exc).__name__}: {str(exc)[:500]}",
            file=sys.stderr,
        )
        return 1
    return server.run(stop)


def _config_and_secret(path: str) -> tuple[HubConfig, str] | None:
    """The hub config and its ack secret, or None after saying what is missing."""
    try:
        cfg = load_hub_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            print(str(issue), file=sys.stderr)
        return None
    secret = cfg.ingest.ack_secret_value()
    if secret is None:
        print(
            f"{path} ingest.ack_secret_env: expected an ack secret "
            "(set the variable it names, or ingest.ack_secret), found none",
            file=sys.stderr,
        )
        return None
    return cfg, secret


def node_key_command(args: argparse.Namespace) -> int:
    """``shaobing hub node-key NODE -c HUB.yaml``: the ack key to provision on that node."""
    from shaobing.contract import ack_key_for

    found = _config_and_secret(args.config)
    if found is None:
        return 2
    print(ack_key_for(found[1], args.node))
    print(
        f"the line above is node {args.node!r}'s ack key: put it in that node's environment "
        "and name the variable in its config (ack_key_env)",
        file=sys.stderr,
    )
    return 0


def worker_token_command(args: argparse.Namespace) -> int:
    """``shaobing hub worker-token WORKER --node NODE [--grid G] [--days D] -c HUB.yaml``."""
    from datetime import UTC, datetime, timedelta

    from hub.registry import load_registry, people_of
    from shaobing.contract import ack_key_for, sign_worker_token

    found = _config_and_secret(args.config)
    if found is None:
        return 2
    cfg, secret = found
    try:
        registry = load_registry(cfg.resolve(cfg.registry)) if cfg.registry else None
    except ConfigError as exc:
        for issue in exc.issues:
            print(str(issue), file=sys.stderr)
        return 2
    grid = args.grid
    if registry is not None:
        if grid is None:  # the worker's own grid in the registry
            grid = next(
                (
                    gid
                    for gid, g in registry.grids.items()
                    if any(p.id == args.worker for p in people_of(g.spec.worker))
                ),
                None,
            )
        if grid is not None and grid not in registry.grids:
            print(f"shaobing hub worker-token: --grid: expected a grid of the registry, found {grid!r}", file=sys.stderr)  # fmt: skip
            return 2
    if grid is None:
        print("shaobing hub worker-token: --grid: expected the worker's grid (not found in the registry)", file=sys.stderr)  # fmt: skip
        return 2
    expires = datetime.now(UTC) + timedelta(days=args.days)
    print(sign_worker_token(ack_key_for(secret, args.node), args.worker, grid, expires))
    print(
        f"the line above is {args.worker!r}'s report token for node {args.node!r} "
        f"(grid {grid}, valid until {expires:%Y-%m-%d})",
        file=sys.stderr,
    )
    return 0
