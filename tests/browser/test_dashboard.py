"""The command centre's dashboard and the worker's page in a real Chromium, against a real
mosquitto and a real ``hub serve`` process."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.browser.kit import API_KEY, ARTIFACTS, PASSWORD, Stack, png_bytes

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1440, "height": 1000}
PHONE = {"width": 375, "height": 812}


def _dashboard(browser: Any, stack: Stack, login: str | None = None) -> Any:
    ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    page.goto(stack.base + "/")
    if login:
        page.fill("#login-name", login)
        page.fill("#login-pass", PASSWORD)
        page.click("#login button[type=submit]")
        page.wait_for_selector("#logout:not([hidden])", timeout=5000)
        assert not page.locator("#login").is_visible()
    from playwright.sync_api import expect

    expect(page.locator("#conn")).to_have_text("实时连接", timeout=5000)
    return page


def test_served_page_has_the_chinese_title_and_a_csp(stack: Stack) -> None:
    import urllib.request

    with urllib.request.urlopen(stack.base + "/", timeout=5) as r:  # noqa: S310 - loopback
        html = r.read().decode()
        csp = r.headers["Content-Security-Policy"]
    assert "<title>哨兵 · 基层治理指挥中心</title>" in html
    assert "script-src 'self'" in csp and "<script>" not in html  # no inline scripts


def test_a_summary_with_script_renders_as_text(browser: Any, stack: Stack) -> None:
    from playwright.sync_api import expect

    page = _dashboard(browser, stack)
    evil = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">占道'
    stack.publish(stack.event("street_vending", "normal", evil, grid_id="beibei-tianfu-02"))
    cell = page.locator("#events td.summary", has_text="<script>")
    expect(cell).to_have_count(1, timeout=5000)
    assert cell.inner_text() == evil
    row = page.locator("#incidents td.summary", has_text="<script>")
    expect(row.first).to_be_visible(timeout=5000)
    assert row.first.inner_text() == evil
    assert page.evaluate("window.__xss") is None
    assert page.locator("main script, main img[src='x']").count() == 0
    page.screenshot(path=str(ARTIFACTS / "d-script-as-text.png"), full_page=True)
    assert not page.errors
    page.context.close()


def test_emergency_is_pinned_and_flashing_until_acknowledged_everywhere(
    browser: Any, stack: Stack
) -> None:
    from playwright.sync_api import expect

    staff = _dashboard(browser, stack, login="cc-tianfu")
    viewer = _dashboard(browser, stack)
    summary = f"滨河步道有人落水 {time.time_ns() % 100000}"
    t0 = time.monotonic()
    stack.publish(stack.event("drowning", "emergency", summary, grid_id="beibei-tianfu-03"))
    cards = [p.locator("#pinned .red-card", has_text=summary) for p in (staff, viewer)]
    for card in cards:
        expect(card).to_have_class(re.compile(r"\bflashing\b"), timeout=2000)
    seen = time.monotonic() - t0
    assert seen < 2.0, f"pinned after {seen:.2f}s"
    expect(cards[1]).to_have_css("animation-name", "flash")
    # pinned at the top: the emergencies section comes before everything else in <main>
    assert staff.evaluate("document.querySelector('main').firstElementChild.id") == "emergencies"
    staff.screenshot(path=str(ARTIFACTS / "a-emergency-flashing.png"), full_page=True)
    # the incident itself (with its acknowledge button) follows the first alarm card
    expect(cards[0].locator("button.ack")).to_be_enabled(timeout=3000)
    expect(cards[1].locator("button.ack")).to_be_disabled(timeout=3000)  # anonymous: read only
    cards[0].locator("button.ack").click()
    for card in cards:
        expect(card).not_to_have_class(re.compile(r"\bflashing\b"), timeout=3000)
        expect(card).to_contain_text("已确认：cc-tianfu")
    viewer.screenshot(path=str(ARTIFACTS / "a-acknowledged-viewer.png"), full_page=True)
    assert not staff.errors and not viewer.errors
    staff.context.close()
    viewer.context.close()


def test_open311_request_shows_up_as_a_new_incident(browser: Any, stack: Stack) -> None:
    from playwright.sync_api import expect

    page = _dashboard(browser, stack)
    text = f"小区门口消防通道被车辆堵住 {time.time_ns() % 100000}"
    res = stack.open311(
        {
            "api_key": API_KEY,
            "service_code": "fire_lane_blocked",
            "lat": "29.8551",
            "long": "106.4451",
            "description": text,
        }
    )
    assert res[0]["service_request_id"]
    row = page.locator("#incidents tbody tr", has_text=text)
    expect(row).to_have_count(1, timeout=3000)
    expect(row).to_contain_text("代家沟社区第二网格")
    # the grid map: hover tells the grid and who is on duty, a click filters the list
    grid = page.locator("#map polygon[data-grid=beibei-tianfu-02]")
    grid.hover(position={"x": 8, "y": 8})
    expect(page.locator("#tip")).to_contain_text("值班网格员：张伟")
    grid.click(position={"x": 8, "y": 8})
    expect(page.locator("#map-filter")).to_contain_text("代家沟社区第二网格")
    places = page.locator("#incidents tbody tr td:nth-child(2)").all_inner_texts()
    assert places and set(places) == {"代家沟社区第二网格"}
    page.screenshot(path=str(ARTIFACTS / "c-open311-incident.png"), full_page=True)
    page.context.close()


def _worker_phone(browser: Any, stack: Stack, errors: list[str] | None = None) -> tuple[Any, Any]:
    """The grid worker of 代家沟社区第一网格 logged in on a phone: (context, page); page
    errors go to ``errors``."""
    ctx = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN")
    phone = ctx.new_page()
    if errors is not None:
        phone.on("pageerror", lambda exc: errors.append(str(exc)))
    phone.goto(stack.base + "/m/")
    phone.fill("#m-name", "w-tianfu-01")
    phone.fill("#m-pass", PASSWORD)
    phone.click("#m-login button[type=submit]")
    return ctx, phone


def _screen_and_dispatch(stack: Stack, wo_id: str | None) -> None:
    """Screening and dispatch (steps 3 and 4): by the routing rules, else by the command
    centre."""
    for _ in range(3):
        wo = stack.call("GET", f"/api/v1/work-orders/{wo_id}", who="cc")
        nxt = {"tracked": "screen", "screened": "dispatch"}.get(wo["state"])
        if nxt is None:
            break
        stack.call("POST", f"/api/v1/work-orders/{wo_id}/transitions", {"action": nxt}, "cc")


def test_worker_accepts_and_handles_on_the_phone_with_a_photo(browser: Any, stack: Stack) -> None:
    from playwright.sync_api import expect

    board = _dashboard(browser, stack)
    summary = f"3栋门口消防通道被占用 {time.time_ns() % 100000}"
    stack.publish(stack.event("fire_lane_blocked", "urgent", summary, grid_id="beibei-tianfu-01"))

    errors: list[str] = []
    ctx, phone = _worker_phone(browser, stack, errors)
    card = phone.locator("#m-orders li.order", has_text=summary)
    expect(card).to_be_visible(timeout=5000)
    wo_id = card.get_attribute("data-id")
    # only the worker's grid is listed
    grids = phone.locator("#m-orders li.order .meta").all_inner_texts()
    assert grids and all("代家沟社区第一网格" in g for g in grids)
    card.locator("button[data-action=track]").click()
    expect(card).not_to_have_attribute("data-state", "reported", timeout=5000)
    _screen_and_dispatch(stack, wo_id)
    expect(card).to_have_attribute("data-state", "dispatched", timeout=5000)  # live on the phone
    card.locator("button[data-action=accept]").click()
    on_board = board.locator(f'#steps .step[data-state=accepted] li[data-id="{wo_id}"]')
    expect(on_board).to_be_visible(timeout=3000)
    card.locator("button[data-action=handle]").click()
    card.locator("textarea.note").fill("已联系车主挪车，通道畅通")
    card.locator("input.photo").set_input_files(
        {"name": "scene.png", "mimeType": "image/png", "buffer": png_bytes()}
    )
    phone.screenshot(path=str(ARTIFACTS / "b-phone-handle-form.png"), full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    card.locator("button.submit").click()
    handled = board.locator(f'#steps .step[data-state=handled] li[data-id="{wo_id}"]')
    expect(handled).to_be_visible(timeout=3000)
    trail = stack.call("GET", f"/api/v1/work-orders/{wo_id}/transitions", who="admin")["items"]
    last = trail[-1] if trail[-1].get("to_state", trail[-1].get("to")) == "handled" else trail[0]
    assert "已联系车主挪车" in str(last) and "photos" in str(last)
    board.screenshot(path=str(ARTIFACTS / "b-dashboard-handled.png"), full_page=True)

    # a report made offline waits on the phone, then reaches the hub when back online
    phone.click("#tab-report")
    ctx.set_offline(True)
    phone.evaluate("window.dispatchEvent(new Event('offline'))")
    words = f"下穿道积水约三十公分 {time.time_ns() % 100000}"
    phone.fill("#r-text", words)
    phone.locator("#r-photo").set_input_files(
        {"name": "water.png", "mimeType": "image/png", "buffer": png_bytes(rgb=(30, 90, 200))}
    )
    phone.click("#m-report button[type=submit]")
    expect(phone.locator("#r-msg")).to_contain_text("已保存", timeout=5000)
    expect(phone.locator("#m-queue")).to_contain_text("1 条", timeout=3000)
    phone.screenshot(path=str(ARTIFACTS / "b-phone-offline-report.png"), full_page=True)
    ctx.set_offline(False)
    phone.evaluate("window.dispatchEvent(new Event('online'))")
    expect(board.locator("#events td.summary", has_text=words)).to_have_count(1, timeout=5000)
    expect(phone.locator("#m-queue")).to_be_hidden(timeout=5000)
    inc = board.locator("#incidents tbody tr", has_text=words)
    expect(inc.locator(".thumbs img")).to_have_count(1, timeout=3000)
    assert not errors and not board.errors
    ctx.close()
    board.context.close()


def test_note_being_typed_on_the_phone_survives_a_live_update(browser: Any, stack: Stack) -> None:
    """A new order in the worker's grid re-renders the list while the worker types a
    note: the open form moves into the new list with the focus and the caret, so the
    keys typed after the update land in the note too (none is lost). (Types no other test
    of this module raises, so each opens an order of its own.)"""
    from playwright.sync_api import expect

    summary = f"5栋楼道堆放垃圾 {time.time_ns() % 100000}"
    stack.publish(stack.event("sanitation", "normal", summary, grid_id="beibei-tianfu-01"))
    ctx, phone = _worker_phone(browser, stack)
    card = phone.locator("#m-orders li.order", has_text=summary)
    expect(card).to_be_visible(timeout=5000)
    card.locator("button[data-action=track]").click()
    expect(card).not_to_have_attribute("data-state", "reported", timeout=5000)
    wo_id = card.get_attribute("data-id")
    _screen_and_dispatch(stack, wo_id)
    expect(card).to_have_attribute("data-state", "dispatched", timeout=5000)
    card.locator("button[data-action=accept]").click()
    expect(card.locator("button[data-action=handle]")).to_be_visible(timeout=5000)
    card.locator("button[data-action=handle]").click()
    note = card.locator("textarea.note")
    note.click()
    phone.keyboard.type("已清理")
    other = f"一楼餐馆油烟扰民 {time.time_ns() % 100000}"
    stack.publish(stack.event("cooking_fumes", "normal", other, grid_id="beibei-tianfu-01"))
    expect(phone.locator("#m-orders li.order", has_text=other)).to_be_visible(timeout=5000)
    phone.keyboard.type("，通道畅通")
    assert note.input_value() == "已清理，通道畅通"
    ctx.close()


def test_api_docs_render_from_the_hubs_own_assets(browser: Any, stack: Stack) -> None:
    from playwright.sync_api import expect

    ctx = browser.new_context(viewport=DESKTOP)
    page = ctx.new_page()
    outside: list[str] = []
    page.on(
        "request",
        lambda req: outside.append(req.url) if not req.url.startswith(stack.base) else None,
    )
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(stack.base + "/docs")
    # the operations of the API are listed: the Swagger UI ran under the page's own CSP
    expect(
        page.locator(".opblock-summary-path", has_text="/api/v1/work-orders").first
    ).to_be_visible(timeout=15000)
    page.screenshot(path=str(ARTIFACTS / "d-api-docs.png"))
    assert not outside, f"requests off the hub: {outside[:3]}"
    assert not [e for e in errors if "Content Security Policy" in e], errors
    ctx.close()


def test_live_stream_keeps_one_row_per_incident_and_the_emergency_on_screen(
    browser: Any, stack: Stack
) -> None:
    from playwright.sync_api import expect

    page = _dashboard(browser, stack, login="cc-tianfu")
    tag = time.time_ns() % 100000
    red = f"河边有人落水 {tag}"
    stack.publish(
        stack.event("drowning", "emergency", red, grid_id="beibei-tianfu-02", device="cam9")
    )
    # a busy camera: 50 intrusions within a minute, each a new track (a new incident key)
    for n in range(50):
        stack.publish(
            stack.event(
                "water_danger_intrusion",
                "urgent",
                f"有人进入危险水域 {tag}-{n}",
                node="busy-node",
                device="busy-cam",
                grid_id="beibei-tianfu-01",
            )
        )
    expect(page.locator("#events tbody tr td.count", has_text="×50")).to_have_count(
        1, timeout=15000
    )
    busy = page.locator("#events tbody tr", has_text="busy-node/busy-cam")
    assert busy.count() == 1
    # the emergency keeps its row and its red card
    expect(page.locator("#events tbody tr", has_text=red)).to_be_visible()
    expect(page.locator("#pinned .red-card", has_text=red)).to_be_visible()
    incidents = {
        i["id"] for i in stack.call("GET", "/api/v1/incidents?limit=500", who="cc")["items"]
    }
    rows = page.locator("#events tbody tr").count()
    assert rows <= len(incidents), (rows, len(incidents))
    page.screenshot(path=str(ARTIFACTS / "d-live-stream-flood.png"), full_page=True)
    page.context.close()


def test_dashboard_fits_a_phone_and_speaks_chinese(browser: Any, stack: Stack) -> None:
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = ctx.new_page()
    page.goto(stack.base + "/")
    page.fill("#login-name", "cc-tianfu")
    page.fill("#login-pass", PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#logout:not([hidden])", timeout=5000)
    page.wait_for_timeout(1500)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px screen"
    who = page.locator("#who").inner_text()
    assert "指挥中心" in who and "command_centre" not in who
    heads = page.locator("#steps h3").all_inner_texts()
    assert heads[0].startswith("1 ") and any(h.startswith("7 ") for h in heads), heads
    assert not any("·" in h.split(" ")[0] for h in heads), heads
    page.screenshot(path=str(ARTIFACTS / "d-phone.png"), full_page=True)
    ctx.close()


def test_false_alarms_show_per_camera_and_reason_and_suppress_in_one_click(
    browser: Any, stack: Stack
) -> None:
    from playwright.sync_api import expect

    tag = time.time_ns() % 100000
    # a type no other test of this module raises, so it opens an incident of its own
    stack.publish(
        stack.event(
            "noise",
            "normal",
            f"水面反光误报 {tag}",
            node="fa-node",
            device="fa-cam",
            grid_id="beibei-tianfu-01",
        )
    )
    order = wait_order(stack, f"水面反光误报 {tag}")
    stack.call(
        "POST",
        f"/api/v1/work-orders/{order}/transitions",
        {"action": "false_alarm", "reason": "水面反光", "note": "水面反光"},
        who="worker",
    )
    page = _dashboard(browser, stack, login="cc-tianfu")
    panel = page.locator("#false-alarms")
    expect(panel).to_contain_text("水面反光", timeout=15000)
    expect(panel).to_contain_text("fa-node/fa-cam")
    expect(panel).to_contain_text("按规则")
    button = panel.locator("tr", has_text="fa-node/fa-cam").locator("button")
    expect(button).to_have_text("屏蔽24小时")
    button.click()
    expect(panel.locator("tr", has_text="fa-node/fa-cam")).to_contain_text(
        "已屏蔽至", timeout=10000
    )
    audit = stack.call("GET", "/api/v1/audit?limit=50", who="admin")["items"]
    assert any(a["action"] == "source.suppress" or "suppress" in a["action"] for a in audit)
    page.screenshot(path=str(ARTIFACTS / "d-false-alarms.png"), full_page=True)
    page.context.close()


def wait_order(stack: Stack, summary: str) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for o in stack.call("GET", "/api/v1/work-orders?limit=200", who="cc")["items"]:
            if o["summary"] == summary:
                return str(o["id"])
        time.sleep(0.3)
    raise AssertionError(f"no order for {summary!r}")
