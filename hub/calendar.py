"""Working calendar: deadlines in working time (hours, weekends, holidays, make-up days 调休)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shaobing.config import CalendarConfig

__all__ = ["WorkCalendar", "add_duration"]

_MAX_DAYS = 800  # bound on the day-by-day walk


def _hm(text: str) -> time:
    hh, mm = (int(x) for x in text.split(":"))
    return time(23, 59, 59, 999999) if hh == 24 else time(hh, mm)


class WorkCalendar:
    """Adds working time to an instant.

    Args:
        config: working periods, weekend days, holidays and make-up working days.
        tz: IANA time zone name the calendar is read in.
    """

    def __init__(self, config: CalendarConfig, tz: str) -> None:
        self.tz = ZoneInfo(tz)
        self.periods = [(_hm(a), _hm(b)) for a, b in config.work_hours]
        self.weekend = set(config.weekend)
        self.holidays = set(config.holidays)
        self.workdays = set(config.workdays)

    def is_workday(self, day: date) -> bool:
        """A make-up day works; a holiday does not; else weekdays outside the weekend work."""
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() not in self.weekend

    def add_working(self, start: datetime, duration: timedelta) -> datetime:
        """The instant when ``duration`` of working time after ``start`` has passed (UTC)."""
        remaining = duration
        local = start.astimezone(self.tz)
        day = local.date()
        if not self.periods:
            return start + duration
        for _ in range(_MAX_DAYS):
            if self.is_workday(day):
                for a, b in self.periods:
                    p_start = datetime.combine(day, a, self.tz)
                    p_end = datetime.combine(day, b, self.tz)
                    begin = max(p_start, local)
                    if begin >= p_end:
                        continue
                    available = p_end - begin
                    if remaining <= available:
                        return (begin + remaining).astimezone(UTC)
                    remaining -= available
            day += timedelta(days=1)
            local = datetime.combine(day, time(0), self.tz)
        raise ValueError(f"calendar: expected working time within {_MAX_DAYS} days, found none")


def add_duration(
    calendar: WorkCalendar, start: datetime, minutes: float, working_time: bool
) -> datetime:
    """``start`` + ``minutes``, in working time or on the wall clock."""
    delta = timedelta(minutes=minutes)
    if working_time:
        return calendar.add_working(start, delta)
    return (start + delta).astimezone(UTC)
