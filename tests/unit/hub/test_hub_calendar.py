"""hub/calendar.py: working-time deadlines (hours, weekends, holidays, make-up days)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hub.calendar import WorkCalendar, add_duration
from shaobing.config import CalendarConfig

SH = ZoneInfo("Asia/Shanghai")


def cal(**kw: object) -> WorkCalendar:
    return WorkCalendar(CalendarConfig.model_validate(kw), "Asia/Shanghai")


def local(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


def test_within_the_morning() -> None:
    c = cal()
    assert c.add_working(local(2026, 3, 2, 9), timedelta(hours=2)) == local(
        2026, 3, 2, 11
    ).astimezone(UTC)


def test_lunch_break_is_skipped() -> None:
    c = cal()
    # 11:00 + 2h working: 1h until 12:00, lunch to 13:30, 1h more → 14:30
    assert c.add_working(local(2026, 3, 2, 11), timedelta(hours=2)) == local(
        2026, 3, 2, 14, 30
    ).astimezone(UTC)


def test_evening_start_rolls_to_next_morning() -> None:
    c = cal()
    assert c.add_working(local(2026, 3, 2, 20), timedelta(minutes=30)) == local(
        2026, 3, 3, 9, 30
    ).astimezone(UTC)


def test_friday_afternoon_rolls_over_the_weekend() -> None:
    c = cal()
    # Friday 17:00 + 2h: 1h on Friday, 1h on Monday
    assert c.add_working(local(2026, 3, 6, 17), timedelta(hours=2)) == local(
        2026, 3, 9, 10
    ).astimezone(UTC)


def test_public_holiday_and_make_up_day() -> None:
    # Labour day 2026: 1–5 May off; Saturday 9 May is a make-up working day (调休)
    c = cal(holidays=[date(2026, 5, d) for d in range(1, 6)], workdays=[date(2026, 5, 9)])
    assert not c.is_workday(date(2026, 5, 4))  # a Monday, but a holiday
    assert c.is_workday(date(2026, 5, 9))  # a Saturday, but a make-up day
    assert c.add_working(local(2026, 4, 30, 17), timedelta(hours=2)) == local(
        2026, 5, 6, 10
    ).astimezone(UTC)
    assert c.add_working(local(2026, 5, 8, 18), timedelta(hours=1)) == local(
        2026, 5, 9, 10
    ).astimezone(UTC)


def test_wall_clock_for_emergencies() -> None:
    c = cal()
    start = local(2026, 3, 7, 23)  # Saturday night
    assert add_duration(c, start, 5, working_time=False) == (
        start + timedelta(minutes=5)
    ).astimezone(UTC)
    assert add_duration(c, start, 5, working_time=True) == local(2026, 3, 9, 9, 5).astimezone(UTC)
