"""The seven steps (7单流程, ARCHITECTURE §6) as data: the actions, the states, the one table of
transitions and the names people see. Nothing here touches the database.

1. 双网点单 reported — an event opened the order; the grid tracks it or calls it a false alarm.
2. 网格跟单 tracked — the command centre screens it (level, board, grid).
3. 筛选订单 screened — it is dispatched to the people of its level and board.
4. 提级派单 dispatched — escalated or reassigned while waiting; the owner accepts it.
5. 板块接单 accepted — the owner handles it on site.
6. 现场办单 handled — someone other than the handler verifies it, or sends it back (rework).
7. 核查 verified → 群众评单 rated — the citizen rates; satisfied closes, unsatisfied reopens.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "Action",
    "State",
    "TRANSITIONS",
    "STATES",
    "TERMINAL",
    "TRANSITION_ACTIONS",
    "ALL_ACTIONS",
    "STATE_NAMES",
    "ACTION_NAMES",
    "Record",
]


class State(StrEnum):
    """Where a work order stands."""

    REPORTED = "reported"
    TRACKED = "tracked"
    SCREENED = "screened"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    HANDLED = "handled"
    VERIFIED = "verified"
    RATED = "rated"
    CLOSED = "closed"
    FALSE_ALARM = "false_alarm"


class Action(StrEnum):
    """What a person (or the system) does: the transitions of a work order, and ``ack`` of a
    red incident."""

    TRACK = "track"
    FALSE_ALARM = "false_alarm"
    SCREEN = "screen"
    DISPATCH = "dispatch"
    ESCALATE = "escalate"
    REASSIGN = "reassign"
    ACCEPT = "accept"
    HANDLE = "handle"
    VERIFY = "verify"
    REWORK = "rework"
    RATE = "rate"
    CLOSE = "close"
    REOPEN = "reopen"
    ACK = "ack"


class Record(StrEnum):
    """Entries of an order's trail that are not transitions."""

    OPEN = "open"
    SUPERVISE = "supervise"
    SEVERITY = "severity"


A, S = Action, State

# state → {action: next state}: the only place the seven steps are written in the code
_STEPS: dict[State, dict[Action, State]] = {
    S.REPORTED: {A.TRACK: S.TRACKED, A.FALSE_ALARM: S.FALSE_ALARM},
    S.TRACKED: {A.SCREEN: S.SCREENED},
    S.SCREENED: {A.DISPATCH: S.DISPATCHED},
    S.DISPATCHED: {A.ESCALATE: S.DISPATCHED, A.REASSIGN: S.DISPATCHED, A.ACCEPT: S.ACCEPTED},
    S.ACCEPTED: {A.HANDLE: S.HANDLED},
    S.HANDLED: {A.VERIFY: S.VERIFIED, A.REWORK: S.ACCEPTED},
    S.VERIFIED: {A.RATE: S.RATED, A.CLOSE: S.CLOSED},
    S.RATED: {A.CLOSE: S.CLOSED, A.REOPEN: S.DISPATCHED},
    S.CLOSED: {},
    S.FALSE_ALARM: {},
}
# the same table in plain strings (what the database and the API carry)
TRANSITIONS: dict[str, dict[str, str]] = {
    s.value: {a.value: t.value for a, t in acts.items()} for s, acts in _STEPS.items()
}
STATES: tuple[str, ...] = tuple(TRANSITIONS)
TERMINAL = frozenset(s for s, acts in TRANSITIONS.items() if not acts)
# the actions that move an order, in the order of the steps
TRANSITION_ACTIONS: tuple[str, ...] = tuple(
    a.value for a in Action if any(a in acts for acts in TRANSITIONS.values())
)
# every action a role may be granted (the transitions and ``ack``)
ALL_ACTIONS: frozenset[str] = frozenset(a.value for a in Action)

_STATE_NAMES: dict[State, str] = {
    S.REPORTED: "双网点单",
    S.TRACKED: "网格跟单",
    S.SCREENED: "筛选订单",
    S.DISPATCHED: "提级派单",
    S.ACCEPTED: "板块接单",
    S.HANDLED: "现场办单",
    S.VERIFIED: "核查",
    S.RATED: "群众评单",
    S.CLOSED: "结案",
    S.FALSE_ALARM: "误报",
}
_ACTION_NAMES: dict[Action | Record, str] = {
    A.TRACK: "网格跟单",
    A.FALSE_ALARM: "误报",
    A.SCREEN: "筛选",
    A.DISPATCH: "派单",
    A.ESCALATE: "提级",
    A.REASSIGN: "改派",
    A.ACCEPT: "接单",
    A.HANDLE: "办结",
    A.VERIFY: "核查通过",
    A.REWORK: "返工",
    A.RATE: "评价",
    A.CLOSE: "结案",
    A.REOPEN: "重办",
    Record.SUPERVISE: "超时督办",
    Record.OPEN: "立单",
    Record.SEVERITY: "级别提升",
}
STATE_NAMES: dict[str, str] = {k.value: v for k, v in _STATE_NAMES.items()}
ACTION_NAMES: dict[str, str] = {k.value: v for k, v in _ACTION_NAMES.items()}
