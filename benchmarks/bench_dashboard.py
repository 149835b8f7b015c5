"""Dashboard latency: event published on the broker → its row visible in a real browser.

``python benchmarks/bench_dashboard.py [--events 20] [--json]`` starts mosquitto, a ``hub
serve`` process and headless Debian Chromium on the dashboard, publishes events one at a time
(QoS 1, one every ``--gap`` seconds) and measures, for each, the time from the publish call
to the moment its summary is visible in the live event list (and, for emergencies, the red
card flashing at the top). Prints p50/p95/max in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# a different type each time, so each emergency opens its own incident (no merging)
RED_TYPES = ("drowning", "fire", "gas_leak", "falling_object", "water_danger_intrusion", "flood")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> int:
    """Run the benchmark; exit 1 when the browser stack cannot run here."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=20, help="events to measure")
    p.add_argument("--gap", type=float, default=0.3, help="seconds between events")
    p.add_argument("--json", action="store_true", help="one JSON result line on stdout")
    args = p.parse_args()

    from tests.browser.kit import Stack, launch, skip_reason

    why = skip_reason()
    if why:
        print(f"bench_dashboard: cannot run: {why}", file=sys.stderr)
        return 1
    from playwright.sync_api import expect, sync_playwright

    lat_event: list[float] = []
    lat_red: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-dash-") as tmp, sync_playwright() as pw:
        stack = Stack(Path(tmp))
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(stack.base + "/")
            expect(page.locator("#conn")).to_have_text("实时连接", timeout=10000)
            for n in range(args.events):
                red = n % 5 == 4  # every fifth one an emergency (a new red incident)
                summary = f"基准事件 {n} {time.time_ns() % 1000000}"
                grid = ("beibei-tianfu-01", "beibei-tianfu-02", "beibei-tianfu-03")[n % 3]
                ev = stack.event(
                    RED_TYPES[(n // 5) % len(RED_TYPES)] if red else "street_vending",
                    "emergency" if red else "normal",
                    summary,
                    device=f"cam{n}",
                    grid_id=grid,
                )
                t0 = time.perf_counter()
                stack.publish(ev)
                page.locator("#events td.summary", has_text=summary).wait_for(timeout=10000)
                lat_event.append((time.perf_counter() - t0) * 1000)
                if red:
                    page.locator("#pinned .red-card.flashing", has_text=summary).wait_for(
                        timeout=10000
                    )
                    lat_red.append((time.perf_counter() - t0) * 1000)
                time.sleep(args.gap)
        finally:
            browser.close()
            stack.close()
    result = {
        "bench": "dashboard",
        "events": len(lat_event),
        "event_visible_ms": {
            "p50": round(statistics.median(lat_event), 1),
            "p95": round(_pct(lat_event, 0.95), 1),
            "max": round(max(lat_event), 1),
        },
        "emergency_pinned_ms": {
            "n": len(lat_red),
            "p50": round(statistics.median(lat_red), 1) if lat_red else None,
            "max": round(max(lat_red), 1) if lat_red else None,
        },
        "target_p95_ms": 1000,
    }
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        ev = result["event_visible_ms"]
        print(
            f"event on broker → visible on dashboard over {result['events']} events: "
            f"p50 {ev['p50']} ms, p95 {ev['p95']} ms, max {ev['max']} ms (target p95 < 1000 ms); "
            f"emergency pinned: {result['emergency_pinned_ms']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
