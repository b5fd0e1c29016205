"""What depends on today, with the clock moved to two instants months apart (`moved_clock`): the API's
default end of a range (today in the asked zone), its "future 'from'" answer, and the generator's
default end of history (now). Each expectation is computed from the moved instant, never from a date
written here, so each case fails if the code read another clock than the one it is given."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from fixtures import generated_rows
from logpulse.api import params, validation
from logpulse.cli import app

ZONES = ("UTC", "America/New_York", "Asia/Kathmandu")


@pytest.mark.parametrize("zone", ZONES)
def test_a_range_without_to_ends_today_in_its_zone(moved_clock: dt.datetime, zone: str) -> None:
    today = moved_clock.astimezone(ZoneInfo(zone)).date()
    r = validation.date_range(str(today - dt.timedelta(days=6)), None, zone, 400)
    assert (r.first, r.last) == (today - dt.timedelta(days=6), today)
    tomorrow = today + dt.timedelta(days=1)
    with pytest.raises(validation.BadRequest) as refused:
        validation.date_range(str(tomorrow), None, zone, 400)
    assert str(refused.value) == f"'from' ({tomorrow}) is in the future: today is {today} in {zone}"


@pytest.mark.parametrize("zone", ZONES)
def test_a_series_without_to_ends_at_the_end_of_today_in_its_zone(moved_clock: dt.datetime, zone: str) -> None:
    tz = ZoneInfo(zone)
    today = moved_clock.astimezone(tz).date()
    t = params.time_range(str(today), None, zone, 400)
    midnight = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), tz)
    assert t.end_ns == int(midnight.timestamp()) * 10**9
    assert t.start_ns < int(moved_clock.timestamp()) * 10**9 < t.end_ns


@pytest.mark.parametrize("mode", ["classic", "live"])
def test_generated_history_ends_now_unless_told_where(moved_clock: dt.datetime, mode: str, tmp_path: Path) -> None:
    args = ["--mode", mode, "--count", "2000", "--rate", "0", "--days", "2", "--seed", "7", "--customers", "3"]
    now = tmp_path / "now.log"
    assert CliRunner().invoke(app, ["generate", "--out", str(now), *args]).exit_code == 0
    times = [row[0] for row in generated_rows(now)]
    assert moved_clock - dt.timedelta(days=2) <= min(times) and max(times) <= moved_clock
    assert max(times) > moved_clock - dt.timedelta(hours=2)  # it ends now, not somewhere before

    end = dt.datetime(2026, 11, 1, 6, tzinfo=dt.UTC)
    told = tmp_path / "told.log"
    result = CliRunner().invoke(app, ["generate", "--out", str(told), *args, "--end", "2026-11-01T06:00:00"])
    assert result.exit_code == 0, result.output
    times = [row[0] for row in generated_rows(told)]
    assert end - dt.timedelta(days=2) <= min(times) and max(times) <= end
