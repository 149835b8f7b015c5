"""The demo's closed loop in the browser alone: a newcomer takes one work order from
reported to closed with the printed accounts, in at most 15 clicks.

``shaobing demo`` runs for real (broker, hub, camera node, sensor gateway). The grid worker
works on the phone page in a phone-sized window, the command centre on the dashboard, the
citizen rates on the order's link without an account. Screenshots of each step are kept in
``test-artifacts/browser/loop-*.png``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.kit import ARTIFACTS, png_bytes
from tests.support.mosquitto import free_port
from tests.support.processes import ROOT, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 1000}


class Clicks:
    """Counts the clicks a person makes."""

    def __init__(self) -> None:
        self.n = 0

    def click(self, locator: Any) -> None:
        self.n += 1
        locator.click()


def _accounts(log: Path) -> dict[str, tuple[str, str]]:
    out = {}
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("login: "):
            role, name, password = line[7:].split()
            out[name] = (role, password)
    return out


def _login(page: Any, clicks: Clicks, form: str, fields: str, name: str, password: str) -> None:
    page.fill(f"#{fields}-name", name)
    page.fill(f"#{fields}-pass", password)
    clicks.click(page.locator(f"#{form} button[type=submit]"))


def test_a_newcomer_closes_one_order_in_the_browser(browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "shaobing.cli", "demo", "--http", f"127.0.0.1:{port}",
             "--workdir", str(tmp_path / "work")],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    clicks = Clicks()
    try:
        wait_for(lambda: "login: " in log.read_text(errors="replace"), 120, "the demo accounts")
        accounts = _accounts(log)
        worker = "w-tianfu-03"
        # --- the grid worker, on the phone
        phone = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
        phone.goto(base + "/m/")
        _login(phone, clicks, "m-login", "m", worker, accounts[worker][1])
        track = phone.locator("#m-orders li.order button[data-action=track]").first
        expect(track).to_be_visible(timeout=60000)
        order_id = track.locator("xpath=ancestor::li[1]").get_attribute("data-id")
        phone.screenshot(path=str(ARTIFACTS / "loop-1-phone-reported.png"))
        clicks.click(track)
        item = phone.locator(f"#m-orders li.order[data-id='{order_id}']")
        accept = item.locator("button[data-action=accept]")
        expect(accept).to_be_visible(timeout=15000)  # routing screened and dispatched it
        clicks.click(accept)
        handle = item.locator("button[data-action=handle]")
        expect(handle).to_be_visible(timeout=15000)
        clicks.click(handle)
        item.locator("textarea.note").fill("已劝离行人，现场设置警示牌")
        photo = tmp_path / "scene.png"
        photo.write_bytes(png_bytes())
        item.locator("input.photo").set_input_files(str(photo))
        phone.screenshot(path=str(ARTIFACTS / "loop-2-phone-handle.png"))
        clicks.click(item.locator("button.submit"))
        expect(item.locator("[data-action]")).to_have_count(0, timeout=15000)
        # --- the command centre, on the dashboard
        cc = next(n for n, (r, _) in accounts.items() if r == "command_centre")
        desk = browser.new_context(viewport=DESKTOP, locale="zh-CN").new_page()
        desk.goto(base + "/")
        _login(desk, clicks, "login", "login", cc, accounts[cc][1])
        expect(desk.locator("#logout")).to_be_visible(timeout=5000)
        card = desk.locator(f"#steps li[data-id='{order_id}']")
        expect(card).to_be_visible(timeout=15000)
        clicks.click(card)
        verify = desk.locator("#order-buttons button[data-action=verify]")
        expect(verify).to_be_visible(timeout=10000)
        desk.screenshot(path=str(ARTIFACTS / "loop-3-dashboard-order.png"))
        clicks.click(verify)
        link = desk.locator("#order-info a[href*='/r/']")
        expect(desk.locator("#order-title")).to_contain_text("核查", timeout=10000)
        href = link.get_attribute("href")
        assert href
        # --- the citizen, from the order's rating link (no account)
        citizen = browser.new_context(viewport=PHONE, locale="zh-CN").new_page()
        citizen.goto(href)
        expect(citizen.locator("#rate-form")).to_be_visible(timeout=10000)
        clicks.click(citizen.locator("input[name=rating][value='5']"))
        clicks.click(citizen.locator("#rate-submit"))
        expect(citizen.locator("#msg")).to_contain_text("谢谢", timeout=10000)
        citizen.screenshot(path=str(ARTIFACTS / "loop-4-citizen-rated.png"))
        # the order is closed; its page shows the whole history
        desk.reload()
        expect(desk.locator("#logout")).to_be_visible(timeout=5000)
        done = desk.locator("#steps .step.done .count")
        expect(done).not_to_have_text("0", timeout=15000)
        desk.goto(base + "/")
        hist = desk.request.get(base + f"/api/v1/work-orders/{order_id}/transitions").json()
        actions = [t["action"] for t in hist["items"]]
        assert {"track", "accept", "handle", "verify", "rate"} <= set(actions), actions
        order = desk.request.get(base + f"/api/v1/work-orders/{order_id}").json()
        assert order["state"] == "closed", order["state"]
        desk.screenshot(path=str(ARTIFACTS / "loop-5-dashboard-closed.png"), full_page=True)
        print(f"closed loop in {clicks.n} clicks")
        assert clicks.n <= 15, clicks.n
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(60)
        except subprocess.TimeoutExpired:
            demo.kill()
        time.sleep(0.2)
