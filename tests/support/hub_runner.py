"""Run the hub's MQTT ingest alone in a process (for fault tests that ``kill -9`` it).

``python -m tests.support.hub_runner --broker URL --db URL --dir FOLDER`` prints
``READY`` on stdout once the event subscription is acknowledged, and runs until
SIGTERM (clean stop) or SIGKILL.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from hub.ingest import Ingest
from hub.store import Store
from shaobing.config import BrokerConfig, HubConfig, IngestConfig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--broker", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--dir", required=True, help="base folder (evidence goes under it)")
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--batch-ms", type=float, default=20.0)
    p.add_argument("--username", default=None)
    p.add_argument("--password", default=None)
    p.add_argument("--hub-id", default="hub")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    config = HubConfig(
        hub_id=args.hub_id,
        db=args.db,
        broker=BrokerConfig(url=args.broker, username=args.username, password=args.password),
        ingest=IngestConfig(batch_size=args.batch_size, batch_ms=args.batch_ms),
        base_dir=args.dir,
    )
    store = Store(config.db_url())
    store.migrate()
    ingest = Ingest(config, store)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    ingest.start()
    if ingest.wait_ready(30):
        print("READY", flush=True)
    done.wait()
    ingest.stop()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
