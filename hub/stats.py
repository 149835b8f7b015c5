"""KPIs of the command centre: 按期结案率, 结案率, 返工率, time to accept/close, counts, trend."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select

from hub import schema
from hub.store import aware
from hub.users import Principal

if TYPE_CHECKING:
    from hub.store import Store

__all__ = ["kpis"]


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def kpis(
    store: Store,
    viewer: Principal,
    tz: str = "Asia/Shanghai",
    trend_days: int = 14,
    scope_level: str | None = None,
) -> dict[str, Any]:
    """Work-order and incident KPIs inside the viewer's scope.

    * ``on_time_close_rate`` (按期结案率): orders closed and handled by their deadline ÷
      orders due (closed, or open past their handling deadline).
    * ``close_rate`` (结案率): closed ÷ all orders except false alarms.
    * ``rework_rate`` (返工率): orders sent back at least once ÷ orders handled.
    * ``avg_accept_s`` / ``avg_close_s``: dispatch → accept, creation → close.
    """
    t, i = schema.work_orders, schema.incidents
    scope = viewer.where(t, scope_level)
    base = [scope] if scope is not None else []
    now = store.now()
    with store.engine.connect() as conn:

        def count(*cond: Any) -> int:
            return int(
                conn.execute(select(func.count()).select_from(t).where(*base, *cond)).scalar_one()
            )

        total = count()
        false_alarms = count(t.c.state == "false_alarm")
        closed = count(t.c.state == "closed")
        closed_on_time = count(t.c.state == "closed", t.c.on_time.is_(True))
        overdue_open = count(
            t.c.state.not_in(["closed", "false_alarm"]),
            t.c.handle_due_at.is_not(None),
            t.c.handle_due_at < now,
            t.c.handled_at.is_(None),
        )
        handled = count(
            or_(
                t.c.handled_at.is_not(None),
                t.c.state.in_(["handled", "verified", "rated", "closed"]),
                t.c.reworks > 0,
            )
        )
        reworked = count(t.c.reworks > 0)
        open_ = count(t.c.state.not_in(["closed", "false_alarm"]))
        avg_accept, avg_close = conn.execute(
            select(func.avg(t.c.accept_s), func.avg(t.c.close_s)).where(
                *base, t.c.state != "false_alarm"
            )
        ).one()

        def grouped(col: Any) -> dict[str, int]:
            return {
                str(k): int(v)
                for k, v in conn.execute(select(col, func.count()).where(*base).group_by(col)).all()
            }

        by_board, by_level, by_type, by_grid, by_state, by_severity = (
            grouped(t.c[c]) for c in ("board", "level", "type", "grid_id", "state", "severity")
        )
        iscope = viewer.where(i, scope_level)
        ibase = [iscope] if iscope is not None else []
        since = now - timedelta(days=trend_days)
        created = [
            aware(r[0])
            for r in conn.execute(
                select(i.c.created_at).where(*ibase, i.c.created_at >= since).limit(200000)
            )
        ]
        incidents_total = int(
            conn.execute(select(func.count()).select_from(i).where(*ibase)).scalar_one()
        )
        pinned = int(
            conn.execute(
                select(func.count()).select_from(i).where(*ibase, and_(i.c.pinned.is_(True)))
            ).scalar_one()
        )
    zone = ZoneInfo(tz)
    days = [
        (now - timedelta(days=d)).astimezone(zone).date().isoformat()
        for d in range(trend_days - 1, -1, -1)
    ]
    trend = dict.fromkeys(days, 0)
    for c in created:
        day = c.astimezone(zone).date().isoformat()  # type: ignore[union-attr]
        if day in trend:
            trend[day] += 1
    due = closed + overdue_open
    return {
        "work_orders_total": total,
        "work_orders_open": open_,
        "work_orders_closed": closed,
        "false_alarms": false_alarms,
        "overdue_open": overdue_open,
        "on_time_close_rate": _rate(closed_on_time, due),
        "close_rate": _rate(closed, total - false_alarms),
        "rework_rate": _rate(reworked, handled),
        "false_alarm_rate": _rate(false_alarms, total),
        "avg_accept_s": round(float(avg_accept), 1) if avg_accept is not None else None,
        "avg_close_s": round(float(avg_close), 1) if avg_close is not None else None,
        "by_board": by_board,
        "by_level": by_level,
        "by_type": by_type,
        "by_grid": by_grid,
        "by_state": by_state,
        "by_severity": by_severity,
        "incidents_total": incidents_total,
        "incidents_pinned": pinned,
        "incidents_trend": [{"date": d, "count": n} for d, n in trend.items()],
    }
