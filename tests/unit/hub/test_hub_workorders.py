"""hub/workorders.py: the seven-step state machine, roles and scope, false alarms."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from hub import schema
from hub.users import ROLE_ACTIONS, SYSTEM, Principal
from hub.workflow import TRANSITION_ACTIONS, Action
from hub.workorders import TRANSITIONS, Forbidden, Invalid, NotFound, TransitionRefused
from tests.conftest import HubKit

# The seven steps of ARCHITECTURE §6, written out by hand (not read from the code), so that
# a transition added to or removed from the code's table fails this test:
# reported→tracked|false_alarm; tracked→screened; screened→dispatched;
# dispatched→dispatched (escalate, reassign)|accepted; accepted→handled;
# handled→verified|accepted (rework); verified→rated|closed; rated→closed|dispatched (reopen).
SEVEN_STEPS: dict[str, dict[str, str]] = {
    "reported": {"track": "tracked", "false_alarm": "false_alarm"},
    "tracked": {"screen": "screened"},
    "screened": {"dispatch": "dispatched"},
    "dispatched": {"escalate": "dispatched", "reassign": "dispatched", "accept": "accepted"},
    "accepted": {"handle": "handled"},
    "handled": {"verify": "verified", "rework": "accepted"},
    "verified": {"rate": "rated", "close": "closed"},
    "rated": {"close": "closed", "reopen": "dispatched"},
    "closed": {},
    "false_alarm": {},
}
STATES = tuple(SEVEN_STEPS)
ACTIONS = (
    "track", "false_alarm", "screen", "dispatch", "escalate", "reassign", "accept",
    "handle", "verify", "rework", "rate", "close", "reopen",
)  # fmt: skip
ADMIN = Principal("admin", "admin")
CC = Principal("cc-tianfu", "command_centre", "beibei-tianfu", person_id="cc-tianfu")
WORKER = Principal("w-tianfu-01", "grid_worker", "beibei-tianfu-01", person_id="w-tianfu-01")
OTHER_WORKER = Principal("w-tianfu-02", "grid_worker", "beibei-tianfu-02", person_id="w-tianfu-02")
SAFETY = Principal(
    "h-tianfu-safety",
    "board_handler",
    "beibei-tianfu",
    board="safety_law",
    person_id="h-tianfu-safety",
)
LIFE = Principal(
    "h-tianfu-life", "board_handler", "beibei-tianfu", board="livelihood", person_id="h-tianfu-life"
)
VIEWER = Principal("v", "viewer")


@pytest.fixture
def manual(hub_url: str, tmp_path) -> HubKit:  # type: ignore[no-untyped-def]
    kit = HubKit(hub_url, tmp_path, routing={"auto_screen": False})
    yield kit  # type: ignore[misc]
    kit.close()


def new_order(kit: HubKit, type_: str = "fire_lane_blocked", **kw: object) -> str:
    kit.feed(kit.event(type_, **kw))
    return kit.orders()[0]["id"]


def force_state(kit: HubKit, wo_id: str, state: str) -> None:
    with kit.store.write() as c:
        c.execute(
            update(schema.work_orders)
            .where(schema.work_orders.c.id == wo_id)
            .values(state=state, handler_id="someone")
        )


def test_the_codes_table_is_the_seven_steps() -> None:
    assert TRANSITIONS == SEVEN_STEPS


# What each role may do, written out by hand (ARCHITECTURE §6, roles): a right added to or
# taken from a role in the code fails this test.
ROLE_RIGHTS: dict[str, set[str]] = {
    "admin": {*ACTIONS, "ack"},
    "command_centre": {*ACTIONS, "ack"},
    "system": {*ACTIONS, "ack"},
    "board_handler": {"escalate", "accept", "handle", "verify", "rework", "ack"},
    "grid_worker": {"track", "false_alarm", "escalate", "accept", "handle", "ack"},
    "viewer": set(),
}


def test_the_codes_role_table_is_written_out() -> None:
    assert ROLE_ACTIONS == ROLE_RIGHTS
    assert set(Action) == {*ACTIONS, "ack"}
    assert TRANSITION_ACTIONS == ACTIONS  # the API lists them in the order of the steps


def test_every_illegal_transition_is_refused_with_the_allowed_ones(manual: HubKit) -> None:
    for state in STATES:
        check_state(manual, state)


def check_state(manual: HubKit, state: str) -> None:
    manual.clock.advance(hours=2)
    wo = new_order(manual)
    force_state(manual, wo, state)
    for action in ACTIONS:
        if action in SEVEN_STEPS[state]:
            continue
        with pytest.raises(TransitionRefused) as info:
            manual.core.orders.transition(wo, action, ADMIN, data={"rating": 5})
        assert sorted(info.value.allowed) == sorted(SEVEN_STEPS[state])
        assert info.value.state == state
    assert manual.core.orders.get(wo, SYSTEM)["state"] == state  # nothing moved
    with manual.store.engine.connect() as c:
        rows = c.execute(
            select(schema.transitions).where(schema.transitions.c.work_order_id == wo)
        ).all()
    assert [r.action for r in rows] == ["open"]


def test_allowed_transitions_from_each_state(manual: HubKit) -> None:
    expected = {
        ("reported", "track"): "tracked",
        ("reported", "false_alarm"): "false_alarm",
        ("tracked", "screen"): "screened",
        ("screened", "dispatch"): "dispatched",
        ("dispatched", "escalate"): "dispatched",
        ("dispatched", "reassign"): "dispatched",
        ("dispatched", "accept"): "accepted",
        ("accepted", "handle"): "handled",
        ("handled", "verify"): "verified",
        ("handled", "rework"): "accepted",
        ("verified", "close"): "closed",
        ("rated", "close"): "closed",
        ("rated", "reopen"): "dispatched",
    }
    for (state, action), to in expected.items():
        manual.clock.advance(hours=2)
        wo = new_order(manual, grid_id="beibei-tianfu-02")
        force_state(manual, wo, state)
        data = {"assignee_id": "w-tianfu-02"} if action == "reassign" else {}
        assert manual.core.orders.transition(wo, action, ADMIN, data=data)["state"] == to
    manual.clock.advance(hours=2)
    wo = new_order(manual, grid_id="beibei-tianfu-02")
    force_state(manual, wo, "verified")
    assert manual.core.orders.transition(wo, "rate", ADMIN, data={"rating": 5})["state"] == "closed"


def test_full_seven_steps_with_audit(manual: HubKit) -> None:
    k = manual
    wo = new_order(k, grid_id="beibei-tianfu-01")
    o = k.core.orders
    assert o.get(wo, SYSTEM)["assignee_id"] == "w-tianfu-01"
    o.transition(wo, "track", WORKER, note="现场确认")
    o.transition(wo, "screen", CC)
    d = o.transition(wo, "dispatch", CC)
    assert d["assignee_id"] == "w-tianfu-01" and d["accept_due_at"] and d["handle_due_at"]
    k.clock.advance(minutes=10)
    assert o.transition(wo, "accept", WORKER)["accept_s"] == 600
    k.clock.advance(minutes=30)
    o.transition(wo, "handle", WORKER, note="已劝离车辆")
    with pytest.raises(TransitionRefused, match="other than the handler"):
        o.transition(
            wo, "verify", Principal("w-tianfu-01", "command_centre", person_id="w-tianfu-01")
        )
    o.transition(wo, "rework", CC, note="车辆仍在")
    o.transition(wo, "handle", WORKER, note="已拖离")
    o.transition(wo, "verify", CC)
    out = o.transition(wo, "rate", CC, data={"rating": 2})
    assert out["state"] == "dispatched" and out["reopens"] == 1  # unsatisfied → reopen
    o.transition(wo, "accept", WORKER)
    o.transition(wo, "handle", WORKER)
    o.transition(wo, "verify", CC)
    out = o.transition(wo, "rate", CC, data={"rating": 5})
    assert out["state"] == "closed" and out["reworks"] == 1 and out["on_time"] is True
    trail = o.audit_trail(wo, SYSTEM)
    assert [(t["from"], t["to"]) for t in trail][:4] == [
        ("reported", "reported"),
        ("reported", "tracked"),
        ("tracked", "screened"),
        ("screened", "dispatched"),
    ]
    assert trail[1]["actor"] == "w-tianfu-01" and trail[1]["note"] == "现场确认"
    assert [t["action"] for t in trail][-3:] == ["verify", "rate", "close"]
    assert k.core.incidents.get(out["incident_id"], SYSTEM)["state"] == "closed"


def test_auto_screen_dispatches_after_tracking(sqlite_hubkit: HubKit) -> None:
    k = sqlite_hubkit
    wo = new_order(k)
    out = k.core.orders.transition(wo, "track", WORKER)
    assert (
        out["state"] == "dispatched"
        and out["level"] == "grid"
        and out["assignee_id"] == "w-tianfu-01"
    )


def test_escalate_moves_up_one_level_and_redispatches(sqlite_hubkit: HubKit) -> None:
    k = sqlite_hubkit
    wo = new_order(k)
    k.core.orders.transition(wo, "track", WORKER)
    seen = []
    for _ in range(3):
        out = k.core.orders.transition(wo, "escalate", CC)
        seen.append((out["level"], out["assignee_id"]))
    assert seen == [
        ("community", "c-daiyun"),
        ("town", "h-tianfu-safety"),
        ("district", "beibei-emergency"),
    ]
    with pytest.raises(TransitionRefused, match="highest"):
        k.core.orders.transition(wo, "escalate", CC)


def test_bad_data_is_invalid(sqlite_hubkit: HubKit) -> None:
    k = sqlite_hubkit
    wo = new_order(k)
    force_state(k, wo, "verified")
    for bad in (0, 6, "5", None, True):
        with pytest.raises(Invalid):
            k.core.orders.transition(wo, "rate", ADMIN, data={"rating": bad})
    force_state(k, wo, "handled")
    with pytest.raises(Invalid, match="photos"):
        k.core.orders.transition(wo, "verify", ADMIN, photos=["nope"])


def test_roles_and_scope(sqlite_hubkit: HubKit) -> None:
    k = sqlite_hubkit
    wo = new_order(k, grid_id="beibei-tianfu-01")
    o = k.core.orders
    with pytest.raises(NotFound):
        o.transition(wo, "track", OTHER_WORKER)  # another grid's worker does not even see it
    with pytest.raises(NotFound):
        o.get(wo, OTHER_WORKER)
    with pytest.raises(NotFound):
        o.get(wo, LIFE)  # another board
    with pytest.raises(Forbidden):
        o.transition(wo, "track", VIEWER)
    with pytest.raises(Forbidden):
        o.transition(wo, "track", SAFETY)  # board handlers do not track
    assert o.get(wo, SAFETY)["id"] == wo
    assert [x["id"] for x in o.list(WORKER)[0]] == [wo]
    assert o.list(OTHER_WORKER)[0] == []
    assert o.list(Principal("x", "command_centre", "yubei"))[0] == []
    assert len(o.list(Principal("x", "command_centre", "beibei"))[0]) == 1
    o.transition(wo, "track", WORKER)
    with pytest.raises(Forbidden):
        o.transition(wo, "reassign", WORKER, data={"assignee_id": "x"})


def test_false_alarms_feed_the_rate_and_suppress_a_noisy_camera(sqlite_hubkit: HubKit) -> None:
    k = sqlite_hubkit
    cfg = k.config.incidents
    for _i in range(cfg.false_alarm_min_count):
        k.clock.advance(hours=1)
        k.feed(k.event(device_id="cam9", grid_id="beibei-tianfu-02"))
        wo = k.orders()[0]["id"]
        k.core.orders.transition(wo, "false_alarm", OTHER_WORKER, note="误报")
    src = {s["source"]: s for s in k.core.orders.sources()}["node-a/cam9/fire_lane"]
    assert src["false_alarm_rate"] == 1.0 and src["suppressed_until"] is not None
    assert any(
        a["action"] == "source.suppress" for a in k.store.list_audit("source:node-a/cam9/fire_lane")
    )
    before = len(k.orders())
    k.clock.advance(hours=1)
    k.feed(k.event(device_id="cam9", grid_id="beibei-tianfu-02"))
    assert len(k.orders()) == before  # suppressed: stored, incident opened, no order
    k.clock.advance(hours=cfg.suppress_h + 1)
    k.feed(k.event(device_id="cam9", grid_id="beibei-tianfu-02"))
    assert len(k.orders()) == before + 1  # suppression expired
