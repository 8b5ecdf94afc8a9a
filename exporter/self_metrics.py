"""The exporter's metrics about itself, declared in one place.

Per check (labels target, check, kind plus the target's static labels): what the scheduler recorded.
Per process: build info, config reloads, worker pool, rendering.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable

from exporter import __version__
from exporter.metrics import MetricFamily, MetricSpec, counter, gauge
from exporter.run import ErrorReason
from exporter.store import SKIP_REASONS, CheckState
from exporter.workers import WorkerStats

CHECK_SUCCESS = gauge("erp_check_success", "Whether the last run of the check succeeded (1) or failed (0).")
CHECK_DURATION = gauge("erp_check_duration_seconds", "How long the last run of the check took.")
CHECK_START_DELAY = gauge(
    "erp_check_start_delay_seconds",
    "How late the last scheduled run of the check started: from when it was due until a worker began it "
    "(busy workers or an overloaded host show here).",
)
CHECK_LAST_RUN = gauge("erp_check_last_run_timestamp_seconds", "When the last run of the check ended.")
CHECK_LAST_SUCCESS = gauge(
    "erp_check_last_success_timestamp_seconds", "When the check last succeeded (absent if it never did)."
)
CHECK_RUNS = counter("erp_check_runs_total", "Runs of the check that ended (successfully or not).")
CHECK_ERRORS = counter("erp_check_errors_total", "Failed runs of the check by reason.", "reason")
CHECK_SKIPPED_RUNS = counter(
    "erp_check_skipped_runs_total", "Runs not started because the previous run was still running."
)
CHECK_SKIPPED_VALUES = counter(
    "erp_check_skipped_values_total",
    "Values not published because the source gave NULL or a non-number.",
    "reason",
)
CHECK_SERIES_DROPPED = counter(
    "erp_check_series_dropped_total", "Series dropped because the check exceeded its series_limit."
)
CHECK_SERIES = gauge("erp_check_series", "Series the last run of the check published.")
CHECK_STALE = gauge(
    "erp_check_stale",
    "1 when the last run is older than two intervals plus the timeout; its values are then withheld.",
)
CHECK_INTERVAL = gauge("erp_check_interval_seconds", "The configured interval of the check.")
CHECK_TIMEOUT = gauge("erp_check_timeout_seconds", "The configured timeout of the check.")

BUILD_INFO = gauge(
    "erp_exporter_build_info", "Version of the exporter; the value is always 1.", "version", "python_version"
)
RELOAD_SUCCESS = gauge(
    "erp_exporter_config_last_reload_successful", "Whether the last configuration (re)load succeeded."
)
RELOAD_SUCCESS_TIME = gauge(
    "erp_exporter_config_last_reload_success_timestamp_seconds", "When the configuration was last loaded."
)
WORKERS = gauge("erp_exporter_workers", "Worker threads configured to run checks.")
WORKERS_BUSY = gauge("erp_exporter_workers_busy", "Worker threads running a check right now.")
ABANDONED = gauge(
    "erp_exporter_abandoned_workers",
    "Workers given up on because a driver call did not return even after cancel (a hung server).",
)
ABANDONED_LIMIT = gauge(
    "erp_exporter_abandoned_workers_limit", "Most abandoned workers that are replaced by new ones."
)
ABANDONED_TOTAL = counter("erp_exporter_abandoned_workers_total", "Workers abandoned since start.")
RENDERS = counter("erp_exporter_renders_total", "Times the exposition was rendered (it is cached between).")
START_TIME = gauge("erp_exporter_start_time_seconds", "When the exporter process started.")

CHECK_METRICS: tuple[MetricSpec, ...] = (
    CHECK_SUCCESS,
    CHECK_DURATION,
    CHECK_START_DELAY,
    CHECK_LAST_RUN,
    CHECK_LAST_SUCCESS,
    CHECK_RUNS,
    CHECK_ERRORS,
    CHECK_SKIPPED_RUNS,
    CHECK_SKIPPED_VALUES,
    CHECK_SERIES_DROPPED,
    CHECK_SERIES,
    CHECK_STALE,
    CHECK_INTERVAL,
    CHECK_TIMEOUT,
)
EXPORTER_METRICS: tuple[MetricSpec, ...] = (
    BUILD_INFO,
    RELOAD_SUCCESS,
    RELOAD_SUCCESS_TIME,
    WORKERS,
    WORKERS_BUSY,
    ABANDONED,
    ABANDONED_LIMIT,
    ABANDONED_TOTAL,
    RENDERS,
    START_TIME,
)


def check_families(states: Iterable[CheckState], now_monotonic: float) -> list[MetricFamily]:
    """What the scheduler recorded about every check, as metric families."""
    families = {spec.name: spec.family() for spec in CHECK_METRICS}
    for state in states:
        labels = {
            **state.meta.labels,
            "target": state.key.target,
            "check": state.key.check,
            "kind": state.meta.kind,
        }
        families[CHECK_INTERVAL.name].add_labels(labels, state.meta.interval)
        families[CHECK_TIMEOUT.name].add_labels(labels, state.meta.timeout)
        families[CHECK_STALE.name].add_labels(labels, 1.0 if state.is_stale(now_monotonic) else 0.0)
        families[CHECK_RUNS.name].add_labels(labels, state.runs_total)
        families[CHECK_SKIPPED_RUNS.name].add_labels(labels, state.skipped_runs_total)
        families[CHECK_SERIES_DROPPED.name].add_labels(labels, state.series_dropped_total)
        for reason in ErrorReason:
            families[CHECK_ERRORS.name].add_labels(
                {**labels, "reason": reason.value}, state.errors_total[reason]
            )
        for skip in SKIP_REASONS:
            families[CHECK_SKIPPED_VALUES.name].add_labels(
                {**labels, "reason": skip}, state.skipped_values_total[skip]
            )
        if state.success is None:
            continue  # never ran yet: no success/duration to report
        families[CHECK_SUCCESS.name].add_labels(labels, 1.0 if state.success else 0.0)
        families[CHECK_DURATION.name].add_labels(labels, state.duration)
        families[CHECK_SERIES.name].add_labels(labels, state.series)
        if state.start_delay is not None:
            families[CHECK_START_DELAY.name].add_labels(labels, state.start_delay)
        if state.last_run_wall is not None:
            families[CHECK_LAST_RUN.name].add_labels(labels, state.last_run_wall)
        if state.last_success_wall is not None:
            families[CHECK_LAST_SUCCESS.name].add_labels(labels, state.last_success_wall)
    return [f for f in families.values() if f.samples]


def exporter_families(
    workers: WorkerStats, reload_ok: bool, reload_time: float | None, renders: int, start_time: float
) -> list[MetricFamily]:
    """Metrics about the exporter process itself."""
    families = [
        BUILD_INFO.family().add(1.0, version=__version__, python_version=platform.python_version()),
        RELOAD_SUCCESS.family().add(1.0 if reload_ok else 0.0),
        WORKERS.family().add(workers.size),
        WORKERS_BUSY.family().add(workers.busy),
        ABANDONED.family().add(workers.abandoned),
        ABANDONED_LIMIT.family().add(workers.abandoned_limit),
        ABANDONED_TOTAL.family().add(workers.abandoned_total),
        RENDERS.family().add(renders),
        START_TIME.family().add(start_time),
    ]
    if reload_time is not None:
        families.append(RELOAD_SUCCESS_TIME.family().add(reload_time))
    return families
