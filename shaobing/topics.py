"""MQTT topics: the only place topic strings are built (ARCHITECTURE §4)."""

from __future__ import annotations

import re

PREFIX = "shaobing/v1"
_SEGMENT = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


def _check(name: str, value: str) -> str:
    if not _SEGMENT.match(value):
        raise ValueError(
            f"{name}: expected letters, digits, '_', '.', '-' (no '/', '+', '#'), found {value!r}"
        )
    return value


def event_topic(node_id: str) -> str:
    """``shaobing/v1/{node}/event`` (QoS 1)."""
    return f"{PREFIX}/{_check('node_id', node_id)}/event"


def evidence_topic(node_id: str, evidence_id: str) -> str:
    """``shaobing/v1/{node}/evidence/{evidence_id}`` (raw bytes, QoS 1)."""
    return f"{PREFIX}/{_check('node_id', node_id)}/evidence/{_check('evidence_id', evidence_id)}"


def status_topic(node_id: str) -> str:
    """``shaobing/v1/{node}/status`` (retained; LWT = offline)."""
    return f"{PREFIX}/{_check('node_id', node_id)}/status"


def ack_topic(node_id: str) -> str:
    """``shaobing/v1/{node}/ack``: hub → node, ids committed by the hub."""
    return f"{PREFIX}/{_check('node_id', node_id)}/ack"


def sensor_topic(node_id: str, device_id: str) -> str:
    """``shaobing/v1/{node}/sensor/{device}``: sensor gateway readings into an edge node."""
    return f"{PREFIX}/{_check('node_id', node_id)}/sensor/{_check('device_id', device_id)}"


def verdict_topic(node_id: str) -> str:
    """``shaobing/v1/{node}/verdict``: hub → node, a person's verdict on the node's alarm."""
    return f"{PREFIX}/{_check('node_id', node_id)}/verdict"


def dispatch_topic(assignee: str) -> str:
    """``shaobing/v1/hub/dispatch/{assignee}``: work-order notice to a worker's device."""
    return f"{PREFIX}/hub/dispatch/{_check('assignee', assignee)}"


def event_subscription(shared_group: str | None = None) -> str:
    """What the hub subscribes to: plain, or ``$share/{group}/…`` for several workers."""
    plain = f"{PREFIX}/+/event"
    if shared_group:
        return f"$share/{_check('shared_group', shared_group)}/{plain}"
    return plain


def evidence_subscription(shared_group: str | None = None) -> str:
    """Subscription for evidence bytes from every node."""
    plain = f"{PREFIX}/+/evidence/+"
    if shared_group:
        return f"$share/{_check('shared_group', shared_group)}/{plain}"
    return plain


def status_subscription() -> str:
    """Subscription for every node's retained status (each hub worker sees all)."""
    return f"{PREFIX}/+/status"


def sensor_subscription(node_id: str) -> str:
    """What an edge node subscribes to for its sensors."""
    return f"{PREFIX}/{_check('node_id', node_id)}/sensor/+"


def parse_node(topic: str) -> str | None:
    """The ``{node}`` segment of a ``shaobing/v1/{node}/…`` topic, or None."""
    parts = topic.split("/")
    if len(parts) >= 4 and parts[0] == "shaobing" and parts[1] == "v1":
        return parts[2]
    return None


def parse_evidence_id(topic: str) -> str | None:
    """The evidence id of an evidence topic, or None."""
    parts = topic.split("/")
    if len(parts) == 5 and parts[3] == "evidence":
        return parts[4]
    return None
