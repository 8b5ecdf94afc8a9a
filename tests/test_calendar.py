"""The business calendar: business days, public holidays and closing periods, at instants given by an
injected clock, plus its config errors and a run inside the real exporter.

Dates used (checked against a printed calendar):
- January 2025 ends on Friday the 31st; February 2025 starts on Saturday, its first business day is
  Monday the 3rd, its last Friday the 28th.
- August 2025 ends on Sunday the 31st; September 2025 starts on Monday.
- France: Thursday 1 May 2025 is a public holiday (Fete du Travail).
- United States: 4 July 2026 is a Saturday, observed on Friday 3 July.
- Germany: 25 and 26 December and 1 January are public holidays everywhere; 6 January (Epiphany) only in
  some states such as Bavaria (BY), not in Berlin (BE). 31 December 2025 is a Wednesday.
- June 2025 ends on Monday the 30th.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from harness import running_app

from exporter.calendar import BusinessCalendar, DateWindow
from exporter.calendar.periods import month_close_window
from exporter.checks.base import RunContext
from exporter.checks.calendar import CalendarCheck
from exporter.config.loader import ConfigError, LoadedConfig, load_config
from exporter.config.model import CalendarConfig, FiscalYearEndPeriodConfig, MonthEndPeriodConfig

BERLIN = "Europe/Berlin"
CONFIG_NAME = "erp-exporter.yml"


def clock_at(local_time: str, timezone: str) -> Callable[[], float]:
    """A stopped clock showing `local_time` (ISO format) on a wall in `timezone`."""
    instant = datetime.fromisoformat(local_time).replace(tzinfo=ZoneInfo(timezone)).timestamp()
    return lambda: instant


def utc_clock(utc_time: str) -> Callable[[], float]:
    return clock_at(utc_time, "UTC")


def series(clock: Callable[[], float], **calendar: Any) -> dict[str, float]:
    """Run a calendar check once at `clock`; its samples as {'name{label="value",...}': value}."""
    settings = {"name": "erp", "timezone": BERLIN, **calendar}
    check = CalendarCheck.from_config(CalendarConfig.model_validate(settings), clock)
    result: dict[str, float] = {}
    for family in check.run(RunContext(timeout=1.0)):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sample.labels.items())
            assert isinstance(sample.value, float | int)
            result[f"{family.name}{{{labels}}}"] = float(sample.value)
    return result


def closing(period: str = "close", calendar: str = "erp") -> str:
    return f'erp_calendar_closing_period{{calendar="{calendar}",period="{period}"}}'


def to_close(period: str = "close", calendar: str = "erp") -> str:
    return f'erp_calendar_workdays_to_close{{calendar="{calendar}",period="{period}"}}'


def business_day(calendar: str = "erp") -> str:
    return f'erp_calendar_business_day{{calendar="{calendar}"}}'


def holiday(calendar: str = "erp") -> str:
    return f'erp_calendar_holiday{{calendar="{calendar}"}}'


def month_end_close(calendar: str = "erp") -> str:
    return f'erp_calendar_month_end_close{{calendar="{calendar}"}}'


LAST_AND_FIRST_DAY = [{"type": "month_end", "name": "close", "last_business_days": 1, "first_business_days": 1}]
THREE_AND_TWO = [{"type": "month_end", "name": "close"}]  # the defaults: last 3, first 2


# ---------------------------------------------------------------------------------------------------
# The whole output


def test_check_publishes_every_series_of_the_calendar() -> None:
    periods = [
        {"type": "month_end", "name": "close", "last_business_days": 1, "first_business_days": 1},
        {"type": "dates", "name": "audit", "dates": [{"start": "2025-02-10", "end": "2025-02-11"}]},
    ]
    assert series(clock_at("2025-01-31T12:00", BERLIN), closing_periods=periods) == {
        closing("close"): 1.0,
        closing("audit"): 0.0,
        to_close("close"): 0.0,
        to_close("audit"): 6.0,  # Mon 3, Tue 4, Wed 5, Thu 6, Fri 7, Mon 10 February
        business_day(): 1.0,
        holiday(): 0.0,
        month_end_close(): 1.0,
    }


# ---------------------------------------------------------------------------------------------------
# Month boundaries


def test_last_business_day_of_january_is_in_the_month_end_close() -> None:
    values = series(clock_at("2025-01-31T12:00", BERLIN), closing_periods=LAST_AND_FIRST_DAY)
    assert (values[closing()], values[to_close()], values[month_end_close()]) == (1.0, 0.0, 1.0)


def test_first_business_day_of_february_is_in_the_month_end_close() -> None:
    values = series(clock_at("2025-02-03T09:00", BERLIN), closing_periods=LAST_AND_FIRST_DAY)
    assert (values[closing()], values[to_close()]) == (1.0, 0.0)


def test_weekend_between_the_last_and_first_business_days_is_in_the_close() -> None:
    values = series(clock_at("2025-02-01T12:00", BERLIN), closing_periods=LAST_AND_FIRST_DAY)
    assert (values[closing()], values[business_day()]) == (1.0, 0.0)


def test_day_before_the_close_is_one_business_day_away() -> None:
    values = series(clock_at("2025-01-30T23:59", BERLIN), closing_periods=LAST_AND_FIRST_DAY)
    assert (values[closing()], values[to_close()], values[month_end_close()]) == (0.0, 1.0, 0.0)


def test_day_after_the_close_counts_business_days_to_the_next_month_end() -> None:
    # 5-7, 10-14, 17-21 and 24-28 February: the close next starts on Friday the 28th.
    values = series(clock_at("2025-02-04T00:00", BERLIN), closing_periods=LAST_AND_FIRST_DAY)
    assert (values[closing()], values[to_close()]) == (0.0, 18.0)


def test_saturday_does_not_count_itself_towards_the_close() -> None:
    # Saturday 25 January: Mon 27 to Fri 31 are the business days up to the close.
    values = series(clock_at("2025-01-25T12:00", BERLIN), closing_periods=LAST_AND_FIRST_DAY)
    assert values[to_close()] == 5.0


# ---------------------------------------------------------------------------------------------------
# A month that ends on a weekend


def test_month_ending_on_a_sunday_closes_on_its_last_three_weekdays_and_the_first_two_of_the_next() -> None:
    calendar = BusinessCalendar(ZoneInfo(BERLIN))
    assert month_close_window(calendar, 2025, 8, 3, 2) == DateWindow(date(2025, 8, 27), date(2025, 9, 2))


def test_close_opens_on_wednesday_when_the_month_ends_on_a_sunday() -> None:
    values = series(clock_at("2025-08-27T00:00", BERLIN), closing_periods=THREE_AND_TWO)
    assert values[closing()] == 1.0


def test_tuesday_before_a_sunday_month_end_is_one_business_day_from_the_close() -> None:
    values = series(clock_at("2025-08-26T23:59", BERLIN), closing_periods=THREE_AND_TWO)
    assert (values[closing()], values[to_close()]) == (0.0, 1.0)


# ---------------------------------------------------------------------------------------------------
# Public holidays inside the closing window


def test_public_holiday_is_a_holiday_and_not_a_business_day() -> None:
    values = series(clock_at("2025-05-01T12:00", "Europe/Paris"), timezone="Europe/Paris", country="FR")
    assert (values[holiday()], values[business_day()]) == (1.0, 0.0)


def test_first_of_may_pushes_the_end_of_the_april_close_to_monday() -> None:
    calendar = BusinessCalendar(ZoneInfo("Europe/Paris"), country="FR")
    # Last three of April: Mon 28 to Wed 30. First two of May: not the holiday Thu 1, so Fri 2 and Mon 5.
    assert month_close_window(calendar, 2025, 4, 3, 2) == DateWindow(date(2025, 4, 28), date(2025, 5, 5))


def test_monday_after_the_first_of_may_is_in_the_close_in_france() -> None:
    values = series(
        clock_at("2025-05-05T10:00", "Europe/Paris"),
        timezone="Europe/Paris",
        country="FR",
        closing_periods=THREE_AND_TWO,
    )
    assert values[closing()] == 1.0


def test_monday_after_the_first_of_may_is_out_of_the_close_without_public_holidays() -> None:
    values = series(
        clock_at("2025-05-05T10:00", "Europe/Paris"), timezone="Europe/Paris", closing_periods=THREE_AND_TWO
    )
    assert values[closing()] == 0.0


def test_observed_us_holiday_on_a_friday_is_not_a_business_day() -> None:
    values = series(clock_at("2026-07-03T12:00", "America/New_York"), timezone="America/New_York", country="US")
    assert (values[holiday()], values[business_day()]) == (1.0, 0.0)


def test_observed_us_holiday_pushes_the_third_business_day_of_july_to_monday() -> None:
    periods = [{"type": "month_end", "name": "close", "first_business_days": 3}]
    monday = series(
        clock_at("2026-07-06T12:00", "America/New_York"),
        timezone="America/New_York",
        country="US",
        closing_periods=periods,
    )
    tuesday = series(
        clock_at("2026-07-07T12:00", "America/New_York"),
        timezone="America/New_York",
        country="US",
        closing_periods=periods,
    )
    assert (monday[closing()], tuesday[closing()]) == (1.0, 0.0)


def test_business_days_to_close_skip_christmas_holidays() -> None:
    # From Monday 22 December 2025: Tue 23, Wed 24, (25 and 26 holidays, weekend), Mon 29 starts the close.
    values = series(clock_at("2025-12-22T12:00", BERLIN), country="DE", closing_periods=THREE_AND_TWO)
    assert values[to_close()] == 3.0


# ---------------------------------------------------------------------------------------------------
# Year end and fiscal year end


FISCAL_YEAR = [{"type": "fiscal_year_end", "name": "close"}]  # December, last 3, first 2


def test_fiscal_year_end_is_on_at_december_31() -> None:
    values = series(clock_at("2025-12-31T18:00", BERLIN), country="DE", closing_periods=FISCAL_YEAR)
    assert (values[closing()], values[month_end_close()]) == (1.0, 1.0)


def test_fiscal_year_end_skips_new_year_and_ends_on_the_second_january_business_day() -> None:
    # 1 January 2026 is a holiday: the first two business days are Friday the 2nd and Monday the 5th.
    values = series(clock_at("2026-01-05T23:00", BERLIN), country="DE", closing_periods=FISCAL_YEAR)
    assert values[closing()] == 1.0


def test_fiscal_year_end_is_over_on_the_third_january_business_day() -> None:
    values = series(clock_at("2026-01-06T08:00", BERLIN), country="DE", closing_periods=FISCAL_YEAR)
    assert (values[closing()], values[month_end_close()]) == (0.0, 0.0)


def test_fiscal_year_end_is_off_at_the_end_of_another_month() -> None:
    values = series(clock_at("2025-11-28T12:00", BERLIN), country="DE", closing_periods=FISCAL_YEAR)
    assert values[closing()] == 0.0


def test_fiscal_year_ending_in_june_closes_on_the_last_three_business_days_of_june() -> None:
    calendar = BusinessCalendar(ZoneInfo(BERLIN))
    # June 2025 ends on Monday the 30th: Thu 26, Fri 27, Mon 30 June, then Tue 1 and Wed 2 July.
    assert month_close_window(calendar, 2025, 6, 3, 2) == DateWindow(date(2025, 6, 26), date(2025, 7, 2))


def test_fiscal_year_ending_in_june_is_on_at_the_start_of_july() -> None:
    periods = [{"type": "fiscal_year_end", "name": "close", "fiscal_year_end_month": 6}]
    values = series(clock_at("2025-07-02T12:00", BERLIN), closing_periods=periods)
    assert values[closing()] == 1.0


def test_fiscal_year_ending_in_june_is_off_at_december_31_and_counts_to_june() -> None:
    periods = [{"type": "fiscal_year_end", "name": "close", "fiscal_year_end_month": 6}]
    values = series(clock_at("2025-12-31T12:00", BERLIN), closing_periods=periods)
    # Thursday 1 January to Friday 26 June 2026: 25 full weeks (125 weekdays) and Thursday, Friday.
    assert (values[closing()], values[to_close()]) == (0.0, 127.0)


# ---------------------------------------------------------------------------------------------------
# Time zones: 2025-01-30 16:00 UTC is already Friday 31 January in Tokyo, still Thursday 30 in Los Angeles


def test_utc_instant_already_on_the_last_business_day_in_tokyo_is_in_the_close() -> None:
    values = series(utc_clock("2025-01-30T16:00"), timezone="Asia/Tokyo", closing_periods=LAST_AND_FIRST_DAY)
    assert (values[closing()], values[to_close()]) == (1.0, 0.0)


def test_same_instant_still_the_day_before_in_los_angeles_is_one_business_day_from_the_close() -> None:
    values = series(utc_clock("2025-01-30T16:00"), timezone="America/Los_Angeles", closing_periods=LAST_AND_FIRST_DAY)
    assert (values[closing()], values[to_close()]) == (0.0, 1.0)


def test_business_day_follows_the_calendars_time_zone() -> None:
    # Sunday 2 March 2025 20:00 UTC is Monday 05:00 in Tokyo and Sunday 12:00 in Los Angeles.
    tokyo = series(utc_clock("2025-03-02T20:00"), timezone="Asia/Tokyo")
    los_angeles = series(utc_clock("2025-03-02T20:00"), timezone="America/Los_Angeles")
    assert (tokyo[business_day()], los_angeles[business_day()]) == (1.0, 0.0)


# ---------------------------------------------------------------------------------------------------
# Subdivisions


def test_epiphany_is_a_holiday_in_bavaria() -> None:
    values = series(clock_at("2025-01-06T12:00", BERLIN), country="DE", subdivision="BY")
    assert (values[holiday()], values[business_day()]) == (1.0, 0.0)


def test_epiphany_is_a_business_day_in_berlin() -> None:
    values = series(clock_at("2025-01-06T12:00", BERLIN), country="DE", subdivision="BE")
    assert (values[holiday()], values[business_day()]) == (0.0, 1.0)


def test_subdivision_can_be_given_by_its_name() -> None:
    values = series(clock_at("2025-01-06T12:00", BERLIN), country="DE", subdivision="Bayern")
    assert values[holiday()] == 1.0


# ---------------------------------------------------------------------------------------------------
# Explicit dates, extra holidays and workdays


STOCK_TAKE = [{"type": "dates", "name": "close", "dates": [{"start": "2025-03-14", "end": "2025-03-17"}]}]


def test_explicit_dates_are_on_until_the_end_of_their_last_day() -> None:
    values = series(clock_at("2025-03-17T23:59", BERLIN), closing_periods=STOCK_TAKE)
    assert (values[closing()], values[to_close()]) == (1.0, 0.0)


def test_explicit_dates_count_business_days_to_their_start() -> None:
    # From Monday 10 March: Tue 11, Wed 12, Thu 13, Fri 14.
    values = series(clock_at("2025-03-10T12:00", BERLIN), closing_periods=STOCK_TAKE)
    assert (values[closing()], values[to_close()]) == (0.0, 4.0)


def test_explicit_dates_that_are_past_have_no_business_days_to_close() -> None:
    values = series(clock_at("2025-03-18T00:00", BERLIN), closing_periods=STOCK_TAKE)
    assert values[closing()] == 0.0
    assert to_close() not in values


def test_explicit_dates_starting_on_saturday_are_one_business_day_away_on_friday() -> None:
    periods = [{"type": "dates", "name": "close", "dates": [{"start": "2025-03-15"}]}]
    values = series(clock_at("2025-03-14T12:00", BERLIN), closing_periods=periods)
    assert (values[closing()], values[to_close()]) == (0.0, 1.0)


def test_explicit_date_without_end_is_on_for_that_day_only() -> None:
    periods = [{"type": "dates", "name": "close", "dates": [{"start": "2025-03-14"}]}]
    on_the_day = series(clock_at("2025-03-14T23:59", BERLIN), closing_periods=periods)
    day_after = series(clock_at("2025-03-15T00:00", BERLIN), closing_periods=periods)
    assert (on_the_day[closing()], day_after[closing()]) == (1.0, 0.0)


def test_extra_holiday_is_a_holiday_and_not_a_business_day() -> None:
    values = series(clock_at("2025-12-24T12:00", BERLIN), country="DE", extra_holidays=["2025-12-24"])
    assert (values[holiday()], values[business_day()]) == (1.0, 0.0)


def test_extra_holidays_move_the_start_of_the_close_earlier() -> None:
    # Without 24 and 31 December the last three business days are 29, 30 and 31; with them 23, 29 and 30.
    values = series(
        clock_at("2025-12-23T12:00", BERLIN),
        country="DE",
        extra_holidays=["2025-12-24", "2025-12-31"],
        closing_periods=THREE_AND_TWO,
    )
    assert values[closing()] == 1.0


def test_sunday_is_a_business_day_with_a_sunday_to_thursday_week() -> None:
    values = series(clock_at("2025-02-02T12:00", BERLIN), workdays=["sun", "mon", "tue", "wed", "thu"])
    assert values[business_day()] == 1.0


def test_holiday_on_a_weekend_is_still_a_holiday() -> None:
    # 26 December 2026 is a Saturday.
    values = series(clock_at("2026-12-26T12:00", BERLIN), country="DE")
    assert (values[holiday()], values[business_day()]) == (1.0, 0.0)


def test_calendar_without_closing_periods_is_never_in_a_close() -> None:
    assert series(clock_at("2025-01-31T12:00", BERLIN)) == {
        business_day(): 1.0,
        holiday(): 0.0,
        month_end_close(): 0.0,
    }


# ---------------------------------------------------------------------------------------------------
# Config


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path, so messages name `erp-exporter.yml` as a user would pass it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load(text: str) -> LoadedConfig:
    Path(CONFIG_NAME).write_text(textwrap.dedent(text), encoding="utf-8")
    return load_config(Path(CONFIG_NAME))


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text)
    return [str(issue) for issue in caught.value.issues]


BAD_CALENDARS = [
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berln
        """,
        [
            "erp-exporter.yml:3: calendars[0].timezone: unknown time zone 'Europe/Berln' "
            "(expected an IANA name such as Europe/Berlin, America/New_York or UTC)"
        ],
        id="unknown-time-zone",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
        """,
        ["erp-exporter.yml:2: calendars[0].timezone: required key is missing"],
        id="time-zone-missing",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            country: XX
        """,
        [
            "erp-exporter.yml:4: calendars[0].country: unknown country 'XX': expected an ISO 3166-1 alpha-2 "
            "code the holidays package supports (e.g. DE, FR, US)"
        ],
        id="unknown-country",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            country: de
        """,
        ["erp-exporter.yml:4: calendars[0].country: unknown country 'de' (did you mean 'DE'? codes are upper case)"],
        id="lower-case-country",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            country: DE
            subdivision: BX
        """,
        [
            "erp-exporter.yml:5: calendars[0].subdivision: unknown subdivision 'BX' of DE "
            "(known: BB, BE, BW, BY, HB, HE, HH, MV, NI, NW, RP, SH, SL, SN, ST, TH)"
        ],
        id="unknown-subdivision",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            subdivision: BY
        """,
        [
            "erp-exporter.yml:4: calendars[0].subdivision: needs a country (the subdivision's country code, "
            "e.g. country: DE)"
        ],
        id="subdivision-without-country",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            extra_holidays: [2025-02-30]
        """,
        [
            "erp-exporter.yml:4: calendars[0].extra_holidays[0]: '2025-02-30' is not a valid date: "
            "day is out of range for month"
        ],
        id="date-that-does-not-exist",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            extra_holidays:
              - 2025-12-24 12:00:00
        """,
        [
            "erp-exporter.yml:5: calendars[0].extra_holidays[0]: expected a date like 2025-12-31 without a time "
            "of day, got 2025-12-24 12:00:00"
        ],
        id="date-with-a-time",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            workdays: [mon, tue, mon]
        """,
        ["erp-exporter.yml:4: calendars[0].workdays: lists mon more than once"],
        id="weekday-twice",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            closing_periods:
              - type: month_ends
                name: close
        """,
        [
            "erp-exporter.yml:5: calendars[0].closing_periods[0].type: unknown closing period type "
            "'month_ends'; expected one of: month_end, fiscal_year_end, dates"
        ],
        id="unknown-period-type",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            closing_periods:
              - name: close
        """,
        [
            "erp-exporter.yml:5: calendars[0].closing_periods[0].type: required key is missing; "
            "expected one of: month_end, fiscal_year_end, dates"
        ],
        id="period-type-missing",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            closing_periods:
              - type: month_end
                name: close
                last_busines_days: 2
        """,
        [
            "erp-exporter.yml:7: calendars[0].closing_periods[0].last_busines_days: unknown key "
            "(did you mean 'last_business_days'?)"
        ],
        id="period-key-misspelt",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            closing_periods:
              - type: fiscal_year_end
                name: fy
                fiscal_year_end_month: 13
        """,
        ["erp-exporter.yml:7: calendars[0].closing_periods[0].fiscal_year_end_month: must be at most 12, got 13"],
        id="fiscal-month-13",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            closing_periods:
              - type: dates
                name: migration
                dates:
                  - start: 2025-03-10
                    end: 2025-03-01
        """,
        [
            "erp-exporter.yml:9: calendars[0].closing_periods[0].dates[0].end: must not be before start "
            "(2025-03-10), got 2025-03-01"
        ],
        id="dates-end-before-start",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            closing_periods:
              - type: dates
                name: migration
                dates: []
        """,
        [
            "erp-exporter.yml:7: calendars[0].closing_periods[0].dates: list should have at least 1 item after "
            "validation, not 0, got a list"
        ],
        id="dates-empty",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            closing_periods:
              - type: month_end
                name: close
                last_business_days: 0
                first_business_days: 0
        """,
        [
            "erp-exporter.yml:5: calendars[0].closing_periods[0]: last_business_days and first_business_days "
            "are both 0: it would never be on"
        ],
        id="period-of-no-days",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            closing_periods:
              - {type: month_end, name: close}
              - {type: fiscal_year_end, name: close}
        """,
        ["erp-exporter.yml:6: calendars[0].closing_periods[1].name: duplicate closing period name 'close'"],
        id="duplicate-period-name",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
          - name: de
            timezone: Europe/Paris
        """,
        ["erp-exporter.yml:4: calendars[1].name: duplicate calendar name 'de'"],
        id="duplicate-calendar-name",
    ),
    pytest.param(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            timeout: 2m
        """,
        [
            "erp-exporter.yml:4: calendars[0].timeout: timeout 2m is longer than its interval (1m); "
            "a check must end before its next run"
        ],
        id="timeout-longer-than-interval",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CALENDARS)
@pytest.mark.usefixtures("in_tmp")
def test_bad_calendar_config_is_refused_with_exact_error_lines(text: str, expected: list[str]) -> None:
    assert errors(text) == expected


@pytest.mark.usefixtures("in_tmp")
def test_calendar_config_defaults() -> None:
    config = load(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            closing_periods:
              - {type: month_end, name: close}
              - {type: fiscal_year_end, name: fy}
        """
    ).config
    calendar = config.calendars[0]
    assert (calendar.workdays, calendar.country, calendar.extra_holidays, calendar.interval) == (
        ["mon", "tue", "wed", "thu", "fri"],
        None,
        [],
        60.0,
    )
    month_end, fiscal = calendar.closing_periods
    assert isinstance(month_end, MonthEndPeriodConfig)
    assert isinstance(fiscal, FiscalYearEndPeriodConfig)
    assert (month_end.last_business_days, month_end.first_business_days) == (3, 2)
    assert (fiscal.fiscal_year_end_month, fiscal.last_business_days, fiscal.first_business_days) == (12, 3, 2)


@pytest.mark.usefixtures("in_tmp")
def test_dates_are_read_from_plain_yaml_dates() -> None:
    calendar = load(
        """\
        calendars:
          - name: de
            timezone: Europe/Berlin
            extra_holidays: [2025-12-24, "2025-12-31"]
        """
    ).config.calendars[0]
    assert calendar.extra_holidays == [date(2025, 12, 24), date(2025, 12, 31)]


# ---------------------------------------------------------------------------------------------------
# Inside the real exporter


def test_calendar_check_runs_in_the_app_and_is_served_on_metrics(tmp_path: Path) -> None:
    # Every weekday a workday, no public holidays, a period in the past: the values do not depend on today.
    config = textwrap.dedent(
        """\
        host:
          enabled: false
        calendars:
          - name: ops
            timezone: Europe/Berlin
            workdays: [mon, tue, wed, thu, fri, sat, sun]
            interval: 1s
            closing_periods:
              - type: dates
                name: migration
                dates:
                  - {start: 2020-01-01, end: 2020-01-02}
        """
    )
    with running_app(tmp_path, config) as running:
        running.wait_for_run("", "calendar:ops", 0, timeout=10)
        assert running.value("erp_calendar_business_day", calendar="ops") == 1.0
        assert running.value("erp_calendar_holiday", calendar="ops") == 0.0
        assert running.value("erp_calendar_closing_period", calendar="ops", period="migration") == 0.0
        assert running.value("erp_calendar_month_end_close", calendar="ops") == 0.0
        assert running.value("erp_calendar_workdays_to_close", calendar="ops") is None
        assert running.value("erp_check_success", check="calendar:ops") == 1.0
