"""A user-defined timetable and helpers shared by the timetable and catchup tests."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from mlpipe.core.timetables import DataInterval, Timetable

DAY = timedelta(days=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


class WeekdaysAt2(Timetable):
    """Mon-Fri at 02:00 UTC; Friday's interval runs until Monday 02:00."""

    description = "weekdays at 02:00 UTC"

    @staticmethod
    def _next_weekday_fire(moment: datetime) -> datetime:
        moment = moment.astimezone(UTC)
        fire = datetime.combine(moment.date(), time(2), UTC)
        if fire < moment:
            fire += DAY
        while fire.weekday() >= 5:
            fire += DAY
        return fire

    def interval_starting_at_or_after(self, moment: datetime) -> DataInterval | None:
        start = self._next_weekday_fire(moment)
        return DataInterval(start, self._next_weekday_fire(start + timedelta(seconds=1)))
