"""Embedded MQTT broker (amqtt, MQTT 3.1.1) for the demo and quick trials.

Production deployments use Mosquitto or EMQX (configs/deploy/); this one exists so that a
fresh machine needs nothing else to run ``shaobing demo``. It has no shared subscriptions,
so a single hub subscribes plainly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

log = logging.getLogger(__name__)


def broker_config(host: str, port: int) -> dict[str, Any]:
    """amqtt configuration: one TCP listener, anonymous access, no $SYS chatter."""
    return {
        "listeners": {
            "default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 2000}
        },
        "timeout_disconnect_delay": 0,
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


async def serve(host: str, port: int, stop: asyncio.Event) -> None:
    """Run the broker until ``stop`` is set."""
    from amqtt.broker import Broker

    broker = Broker(broker_config(host, port))
    await broker.start()
    print(f"shaobing broker: listening on mqtt://{host}:{port}", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await broker.shutdown()


def broker_command(args: argparse.Namespace) -> int:
    """``shaobing broker [--port N] [--host H]``."""
    for noisy in ("amqtt", "transitions", "amqtt.broker", "amqtt.mqtt.protocol"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(args.host, args.port, stop)

    try:
        asyncio.run(main())
    except OSError as exc:
        print(f"shaobing broker: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
