"""One rule decides every check's timeout: its own, else the default, never past its interval."""

from __future__ import annotations

from exporter.config.schedule import Schedule, check_schedule, check_timeout


def test_an_own_timeout_is_kept() -> None:
    assert check_timeout(3.0, 10.0, 15.0) == 3.0


def test_without_an_own_timeout_the_default_applies() -> None:
    assert check_timeout(None, 10.0, 15.0) == 10.0


def test_a_default_longer_than_the_interval_is_cut_to_the_interval() -> None:
    assert check_timeout(None, 60.0, 15.0) == 15.0


def test_no_timeout_outlasts_the_interval() -> None:
    assert check_timeout(30.0, 10.0, 15.0) == 15.0


def test_a_schedule_takes_the_default_interval_when_the_check_sets_none() -> None:
    assert check_schedule(None, None, default_interval=60.0, default_timeout=10.0) == Schedule(60.0, 10.0)


def test_a_schedule_cuts_the_default_timeout_to_the_checks_own_interval() -> None:
    assert check_schedule(5.0, None, default_interval=60.0, default_timeout=10.0) == Schedule(5.0, 5.0)
