"""The edge's many-client MQTT loop (clients are made by ``shaobing.mqtt``).

``MqttLoop`` drives any number of paho clients from one selector thread (paho's
external-loop API), so a process with many simulated nodes does not need a thread per
node. Each participant (a ``Publisher``) gets a ``tick`` call whenever the loop wakes.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import paho.mqtt.client as paho

__all__ = ["MqttLoop", "Participant"]

log = logging.getLogger(__name__)


class Participant(Protocol):
    """Something the loop ticks: returns the monotonic time it next wants a tick."""

    def tick(self, now: float) -> float:
        """Do due work; return the next deadline (monotonic seconds)."""
        ...


class MqttLoop:
    """One thread that runs the network I/O of many paho clients and ticks participants.

    Clients are attached with ``attach(client)`` before ``connect``; the loop registers
    their sockets with a selector through paho's socket callbacks. All paho calls for
    an attached client must happen on the loop thread (use ``call`` from elsewhere).
    """

    def __init__(self, name: str = "mqtt-loop", misc_interval_s: float = 0.5) -> None:
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._clients: set[paho.Client] = set()
        self._participants: list[Participant] = []
        self._calls: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._running = False
        self._thread: threading.Thread | None = None
        self._name = name
        self._misc_interval = misc_interval_s
        self._users = 0

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the loop thread (idempotent; counts users so shared loops stop last)."""
        with self._lock:
            self._users += 1
            if self._thread is not None:
                return
            self._running = True
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0, *, force: bool = False) -> None:
        """Release one user; the thread ends when the last user leaves (or ``force``)."""
        with self._lock:
            self._users = max(0, self._users - 1)
            if self._users and not force:
                return
            self._running = False
            thread = self._thread
            self._thread = None
        self.wake()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def on_loop_thread(self) -> bool:
        """True when called from the loop thread."""
        return self._thread is not None and threading.current_thread() is self._thread

    def wake(self) -> None:
        """Interrupt the selector wait so participants are ticked now."""
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass

    def call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop thread soon."""
        with self._lock:
            self._calls.append(fn)
        self.wake()

    def call_wait(self, fn: Callable[[], None], timeout: float) -> bool:
        """Run ``fn`` on the loop thread and wait for it; True when it ran in time."""
        if self.on_loop_thread or self._thread is None:
            fn()
            return True
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self.call(run)
        return done.wait(timeout)

    def add(self, participant: Participant) -> None:
        """Tick ``participant`` on every wake of the loop."""
        with self._lock:
            self._participants.append(participant)
        self.wake()

    def remove(self, participant: Participant) -> None:
        """Stop ticking ``participant``."""
        with self._lock:
            if participant in self._participants:
                self._participants.remove(participant)

    # ----------------------------------------------------------------- clients

    def attach(self, client: paho.Client) -> None:
        """Route ``client``'s socket through this loop (call before connecting)."""
        client.on_socket_open = self._on_open
        client.on_socket_close = self._on_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        self._clients.add(client)

    def detach(self, client: paho.Client) -> None:
        """Forget ``client`` (after it is disconnected)."""
        sock = client.socket()
        if sock is not None:
            self._unregister(sock)
        self._clients.discard(client)

    def _on_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._unregister(sock)
        try:
            self._sel.register(sock, selectors.EVENT_READ, client)
        except (ValueError, OSError):
            pass

    def _on_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._unregister(sock)

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        try:
            self._sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)
        except (KeyError, ValueError, OSError):
            pass
        if not self.on_loop_thread:
            self.wake()

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        try:
            self._sel.modify(sock, selectors.EVENT_READ, client)
        except (KeyError, ValueError, OSError):
            pass

    def _unregister(self, sock: Any) -> None:
        try:
            self._sel.unregister(sock)
        except (KeyError, ValueError, OSError):
            pass

    # ----------------------------------------------------------------- the loop

    def _run(self) -> None:
        next_misc = 0.0
        deadline = 0.0
        while self._running:
            timeout = max(0.0, min(deadline - time.monotonic(), 0.25))
            try:
                events = self._sel.select(timeout)
            except OSError:
                events = []
            for key, mask in events:
                client = key.data
                if client is None:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                    continue
                try:
                    if mask & selectors.EVENT_READ:
                        client.loop_read()
                        sock = client.socket()
                        pending = getattr(sock, "pending", None)
                        rounds = 0
                        while pending is not None and pending() and rounds < 64:
                            client.loop_read()
                            rounds += 1
                    if mask & selectors.EVENT_WRITE and client.socket() is not None:
                        client.loop_write()
                except Exception:  # a client fault must not stop the others
                    log.exception("mqtt loop: client I/O failed")
            now = time.monotonic()
            if now >= next_misc:
                next_misc = now + self._misc_interval
                for client in list(self._clients):
                    try:
                        client.loop_misc()
                    except Exception:
                        log.exception("mqtt loop: loop_misc failed")
            with self._lock:
                calls, self._calls = self._calls, []
                participants = list(self._participants)
            for fn in calls:
                try:
                    fn()
                except Exception:
                    log.exception("mqtt loop: call failed")
            deadline = now + 0.25
            for participant in participants:
                try:
                    deadline = min(deadline, participant.tick(time.monotonic()))
                except Exception:
                    log.exception("mqtt loop: participant tick failed")
        for client in list(self._clients):
            sock = client.socket()
            if sock is not None:
                self._unregister(sock)
