"""The worker's phone page: extracted fields shown for checking, corrected, confirmed, learnt.

A grid worker types a report; the page shows type, place and severity as editable fields
before anything is sent, asks when the extractor is unsure, and the hub keeps the final
fields with the original text as a labelled example (who corrected what).
"""

from __future__ import annotations

import time
from typing import Any

from tests.browser.kit import ARTIFACTS, PASSWORD, Stack

PHONE = {"width": 375, "height": 812}


def _phone(browser: Any, stack: Stack) -> tuple[Any, Any, list[str]]:
    ctx = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(stack.base + "/m/")
    page.fill("#m-name", "w-tianfu-01")
    page.fill("#m-pass", PASSWORD)
    page.click("#m-login button[type=submit]")
    page.click("#tab-report")
    return ctx, page, errors


def test_worker_checks_corrects_and_confirms_a_report(browser: Any, stack: Stack) -> None:
    from playwright.sync_api import expect

    ctx, phone, errors = _phone(browser, stack)
    tag = time.time_ns() % 100000
    text = f"代家沟社区5栋楼上有人往下扔花盆，砸到了楼下的车 {tag}"
    phone.fill("#r-text", text)
    phone.click("#m-report button[type=submit]")  # first press: show what was understood
    expect(phone.locator("#r-fields")).to_be_visible(timeout=5000)
    expect(phone.locator("#r-msg")).to_contain_text("请核对")
    assert phone.input_value("#r-type") == "falling_object"
    assert "代家沟社区5栋" in phone.input_value("#r-place")
    assert phone.input_value("#r-sev") == "urgent"
    # the worker knows better: someone was hurt
    phone.select_option("#r-sev", "emergency")
    phone.screenshot(path=str(ARTIFACTS / "b-phone-report-check.png"), full_page=True)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.click("#m-report button[type=submit]")
    expect(phone.locator("#r-msg")).to_contain_text("上报成功", timeout=5000)
    expect(phone.locator("#r-fields")).to_be_hidden()

    rows = stack.call("GET", "/api/v1/reports/labelled", who="admin")["items"]
    row = next(r for r in rows if r["text"] == text)
    assert row["types"] == "falling_object" and row["severities"] == "emergency"
    assert row["extracted_severity"] == "urgent" and row["corrected"] == "severity"
    assert row["corrected_by"] == "w-tianfu-01"
    ev = stack.call("GET", f"/api/v1/events/{row['event_id']}", who="admin")
    assert ev["severity"] == "emergency" and ev["type"] == "falling_object"

    # unsure: the page asks, and sends nothing until the worker has checked
    vague = f"这边有个情况需要处理一下 {tag}"
    phone.fill("#r-text", vague)
    phone.click("#r-check")
    expect(phone.locator("#r-ask")).to_be_visible(timeout=5000)
    phone.select_option("#r-type", "sanitation")
    phone.fill("#r-place", "代家沟社区3栋")
    phone.click("#m-report button[type=submit]")
    expect(phone.locator("#r-msg")).to_contain_text("我已核对")
    assert not any(
        r["text"] == vague
        for r in stack.call("GET", "/api/v1/reports/labelled", who="admin")["items"]
    )
    phone.check("#r-confirmed")
    phone.click("#m-report button[type=submit]")
    expect(phone.locator("#r-msg")).to_contain_text("上报成功", timeout=5000)
    rows = stack.call("GET", "/api/v1/reports/labelled", who="admin")["items"]
    row = next(r for r in rows if r["text"] == vague)
    assert row["types"] == "sanitation" and row["location"] == "代家沟社区3栋"
    assert "type" in row["corrected"].split(",") and "location" in row["corrected"].split(",")
    assert not errors
    ctx.close()
