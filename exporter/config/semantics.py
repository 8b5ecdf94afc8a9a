"""Rules that span several keys, each reported at the key that must change."""

from __future__ import annotations

from collections.abc import Iterator

from exporter.config.model import (
    RESERVED_LABEL_NAMES,
    CheckSettings,
    DbResponseCheckConfig,
    ExporterConfig,
    GlobalConfig,
    TargetConfig,
)
from exporter.config.yaml_source import PathKey
from exporter.db.dialect import Dialect, dialect_from_driver_name
from exporter.db.guard import GuardError, check_read_only


def effective_interval(check: CheckSettings, global_config: GlobalConfig) -> float:
    """The check's own interval, else its kind's default, else the global default."""
    if check.interval is not None:
        return check.interval
    if type(check).default_interval is not None:
        return float(type(check).default_interval)  # type: ignore[arg-type]
    return global_config.interval


def effective_timeout(check: CheckSettings, global_config: GlobalConfig) -> float:
    """The check's own timeout, else the global default, never longer than the interval."""
    if check.timeout is not None:
        return check.timeout
    return min(global_config.timeout, effective_interval(check, global_config))


def semantic_issues(config: ExporterConfig) -> Iterator[tuple[PathKey, str]]:
    """Yield (key path, message) for every cross-key problem."""
    yield from _duplicates([t.name for t in config.targets], "targets", "name", "target")
    for index, target in enumerate(config.targets):
        yield from _target_issues(target, ("targets", index), config.global_)
    yield from _duplicates([g.name for g in config.process_groups], "process_groups", "name", "process group")
    for index, group in enumerate(config.process_groups):
        if group.process_name is None and group.cmdline is None:
            yield ("process_groups", index), "needs process_name or cmdline (or both)"
        yield from _interval_issues(group.interval, group.timeout, ("process_groups", index))
    yield from _interval_issues(config.host.interval, config.host.timeout, ("host",))


def _target_issues(target: TargetConfig, path: PathKey, global_config: GlobalConfig) -> Iterator[tuple[PathKey, str]]:
    if (target.driver is None) == (target.dsn is None):
        yield path, "set exactly one of driver or dsn"
    if target.password is not None and target.password_file is not None:
        yield (*path, "password_file"), "set password or password_file, not both"
    for label in target.labels:
        if label in RESERVED_LABEL_NAMES or label.startswith("__"):
            yield (*path, "labels", label), f"label name '{label}' is reserved by the exporter's metrics"
    names = [check.effective_name for check in target.checks]
    for index, name in enumerate(names):
        if name in names[:index]:
            yield (*path, "checks", index, "name"), f"duplicate check name '{name}' (give it a name)"
    dialect = dialect_from_driver_name(target.driver or "")
    for index, check in enumerate(target.checks):
        check_path = (*path, "checks", index)
        interval = effective_interval(check, global_config)
        timeout = effective_timeout(check, global_config)
        if timeout > interval:
            yield (*check_path, "timeout"), "timeout must not be longer than the interval"
        if isinstance(check, DbResponseCheckConfig) and check.probe_query is not None:
            yield from _guard_issue(check.probe_query, dialect, (*check_path, "probe_query"))


def _guard_issue(sql: str, dialect: Dialect, path: PathKey) -> Iterator[tuple[PathKey, str]]:
    try:
        check_read_only(sql, None if dialect is Dialect.UNKNOWN else dialect)
    except GuardError as exc:
        yield path, str(exc)


def _interval_issues(interval: float | None, timeout: float | None, path: PathKey) -> Iterator[tuple[PathKey, str]]:
    if interval is not None and timeout is not None and timeout > interval:
        yield (*path, "timeout"), "timeout must not be longer than the interval"


def _duplicates(names: list[str], section: str, key: str, what: str) -> Iterator[tuple[PathKey, str]]:
    for index, name in enumerate(names):
        if name in names[:index]:
            yield (section, index, key), f"duplicate {what} name '{name}'"
