"""Rules that span several keys, each reported at the key that must change."""

from __future__ import annotations

from collections.abc import Iterator

from exporter.config.log_presets import PRESETS as LOG_PATTERN_PRESETS
from exporter.config.model import (
    RESERVED_LABEL_NAMES,
    CheckSettings,
    DbResponseCheckConfig,
    ExporterConfig,
    GlobalConfig,
    SqlTransactionCheckConfig,
    TargetConfig,
    TrytonTransactionConfig,
)
from exporter.config.schedule import Schedule, check_schedule
from exporter.db.dialect import Dialect, dialect_from_driver_name
from exporter.db.guard import GuardError, check_read_only
from exporter.source.durations import format_duration
from exporter.source.yaml_source import PathKey
from exporter.tryton_rpc import TRYTON_SESSION_STEPS, tryton_method_refusal


def entry_schedule(check: CheckSettings, global_config: GlobalConfig) -> Schedule:
    """The schedule of a target's check entry: its own settings, else its kind's interval, else global."""
    default_interval = type(check).default_interval
    return check_schedule(
        check.interval,
        check.timeout,
        default_interval=float(default_interval) if default_interval is not None else global_config.interval,
        default_timeout=global_config.timeout,
    )


def effective_interval(check: CheckSettings, global_config: GlobalConfig) -> float:
    """The check's own interval, else its kind's default, else the global default."""
    return entry_schedule(check, global_config).interval


def effective_timeout(check: CheckSettings, global_config: GlobalConfig) -> float:
    """The check's own timeout, else the global default, never longer than the interval."""
    return entry_schedule(check, global_config).timeout


def semantic_issues(config: ExporterConfig) -> Iterator[tuple[PathKey, str]]:
    """Yield (key path, message) for every cross-key problem."""
    yield from _duplicates([t.name for t in config.targets], "targets", "name", "target")
    for index, target in enumerate(config.targets):
        yield from _target_issues(target, ("targets", index), config.global_)
    yield from _duplicates([g.name for g in config.process_groups], "process_groups", "name", "process group")
    for index, group in enumerate(config.process_groups):
        group_path: PathKey = ("process_groups", index)
        if group.process_name is None and group.cmdline is None:
            yield group_path, "needs process_name or cmdline (or both)"
        yield from _own_timeout_issue(group.interval, group.timeout, config.global_, group_path)
    yield from _own_timeout_issue(config.host.interval, config.host.timeout, config.global_, ("host",))
    yield from _calendar_issues(config)
    yield from _http_transaction_issues(config)
    yield from _backup_and_log_issues(config)


def _target_issues(
    target: TargetConfig, path: PathKey, global_config: GlobalConfig
) -> Iterator[tuple[PathKey, str]]:
    if target.driver is not None and target.dsn is not None:
        yield (*path, "dsn"), "set driver or dsn, not both"
    elif target.driver is None and target.dsn is None:
        yield path, "needs driver (with its connection keys) or dsn"
    if target.password is not None and target.password_file is not None:
        yield (*path, "password_file"), "set password or password_file, not both"
    for label in target.labels:
        if label in RESERVED_LABEL_NAMES or label.startswith("__"):
            yield (*path, "labels", label), f"label name '{label}' is reserved by the exporter's metrics"
    if target.backoff.max < target.backoff.initial:
        yield (*path, "backoff", "max"), (
            f"must not be shorter than backoff.initial ({format_duration(target.backoff.initial)})"
        )
    names = [check.effective_name for check in target.checks]
    for index, check in enumerate(target.checks):
        name = names[index]
        if name in names[:index]:
            hint = "" if check.name else " (a check's name defaults to its kind: give this one a name)"
            yield (*path, "checks", index, "name"), f"duplicate check name '{name}'{hint}"
    dialect = dialect_from_driver_name(target.driver or "")
    for index, check in enumerate(target.checks):
        check_path = (*path, "checks", index)
        interval = effective_interval(check, global_config)
        timeout = check.timeout
        if timeout is not None and timeout > interval:
            if check.interval is not None:
                where = "its interval"
            elif type(check).default_interval is not None:
                where = f"the default interval of {check.kind_name} checks"
            else:
                where = "global.interval"
            yield (*check_path, "timeout"), _longer_than(timeout, interval, where)
        if isinstance(check, DbResponseCheckConfig) and check.probe_query is not None:
            yield from _guard_issue(check.probe_query, dialect, (*check_path, "probe_query"))
        if isinstance(check, SqlTransactionCheckConfig):
            yield from _step_names([step.name for step in check.steps], (*check_path, "steps"))
            for number, step in enumerate(check.steps):
                yield from _guard_issue(step.sql, dialect, (*check_path, "steps", number, "sql"))


def _http_transaction_issues(config: ExporterConfig) -> Iterator[tuple[PathKey, str]]:
    transactions = config.http_transactions
    yield from _duplicates([t.name for t in transactions], "http_transactions", "name", "http transaction")
    for index, transaction in enumerate(transactions):
        path: PathKey = ("http_transactions", index)
        yield from _own_timeout_issue(transaction.interval, transaction.timeout, config.global_, path)
        timeout = transaction.timeout if transaction.timeout is not None else config.global_.timeout
        if transaction.step_timeout is not None and transaction.step_timeout > timeout:
            where = "its timeout" if transaction.timeout is not None else "global.timeout"
            yield (*path, "step_timeout"), (
                f"step_timeout {format_duration(transaction.step_timeout)} is longer than {where} "
                f"({format_duration(timeout)}), which bounds the whole scenario"
            )
        for label in transaction.labels:
            if label in RESERVED_LABEL_NAMES or label.startswith("__"):
                yield (*path, "labels", label), f"label name '{label}' is reserved by the exporter's metrics"
        credentials = transaction.credentials
        if credentials is not None:
            if credentials.password is not None and credentials.password_file is not None:
                yield (*path, "credentials", "password_file"), "set password or password_file, not both"
            elif credentials.password is None and credentials.password_file is None:
                yield (*path, "credentials"), "needs password (from ${ENV_VAR}) or password_file"
        tls = transaction.tls
        if not transaction.base_url.startswith("https://"):
            for key in ("ca_file", "cert_file", "key_file", "server_name"):
                if getattr(tls, key) is not None:
                    yield (*path, "tls", key), "only applies to https base URLs"
        if tls.key_file is not None and tls.cert_file is None:
            yield (*path, "tls", "key_file"), "needs cert_file (the client certificate the key belongs to)"
        names = [step.name for step in transaction.steps]
        yield from _step_names(names, (*path, "steps"))
        if isinstance(transaction, TrytonTransactionConfig):
            for number, step in enumerate(transaction.steps):
                if step.name in TRYTON_SESSION_STEPS:
                    yield (*path, "steps", number, "name"), (
                        f"step name '{step.name}' is taken: the exporter adds the login and logout steps itself"
                    )
                refusal = tryton_method_refusal(step.method)
                if refusal is not None:
                    yield (*path, "steps", number, "method"), refusal


def _step_names(names: list[str], path: PathKey) -> Iterator[tuple[PathKey, str]]:
    for index, name in enumerate(names):
        if name in names[:index]:
            yield (*path, index, "name"), f"duplicate step name '{name}'"


def _calendar_issues(config: ExporterConfig) -> Iterator[tuple[PathKey, str]]:
    yield from _duplicates([c.name for c in config.calendars], "calendars", "name", "calendar")
    for index, calendar in enumerate(config.calendars):
        path: PathKey = ("calendars", index)
        names = [period.name for period in calendar.closing_periods]
        for number, period in enumerate(calendar.closing_periods):
            period_path = (*path, "closing_periods", number)
            if period.name in names[:number]:
                yield (*period_path, "name"), f"duplicate closing period name '{period.name}'"
            if period.type != "dates" and period.last_business_days == 0 and period.first_business_days == 0:
                yield period_path, "last_business_days and first_business_days are both 0: it would never be on"
        yield from _own_timeout_issue(calendar.interval, calendar.timeout, config.global_, path)


def _longer_than(timeout: float, interval: float, where: str) -> str:
    return (
        f"timeout {format_duration(timeout)} is longer than {where} ({format_duration(interval)}); "
        "a check must end before its next run"
    )


def _guard_issue(sql: str, dialect: Dialect, path: PathKey) -> Iterator[tuple[PathKey, str]]:
    try:
        check_read_only(sql, None if dialect is Dialect.UNKNOWN else dialect)
    except GuardError as exc:
        yield path, str(exc)


def _own_timeout_issue(
    interval: float | None, timeout: float | None, global_config: GlobalConfig, path: PathKey
) -> Iterator[tuple[PathKey, str]]:
    """A timeout set on the host or a process group must fit in its interval (its own, else global's)."""
    effective = interval if interval is not None else global_config.interval
    if timeout is not None and timeout > effective:
        where = "its interval" if interval is not None else "global.interval"
        yield (*path, "timeout"), _longer_than(timeout, effective, where)


def _duplicates(names: list[str], section: str, key: str, what: str) -> Iterator[tuple[PathKey, str]]:
    for index, name in enumerate(names):
        if name in names[:index]:
            yield (section, index, key), f"duplicate {what} name '{name}'"


def _backup_and_log_issues(config: ExporterConfig) -> Iterator[tuple[PathKey, str]]:
    yield from _duplicates([b.name for b in config.backups], "backups", "name", "backup")
    for index, backup in enumerate(config.backups):
        yield from _own_timeout_issue(backup.interval, backup.timeout, config.global_, ("backups", index))
    yield from _duplicates([log.name for log in config.logs], "logs", "name", "log")
    for index, log in enumerate(config.logs):
        path: PathKey = ("logs", index)
        if not log.presets and not log.patterns:
            yield path, "needs patterns or presets (or both)"
        yield from _own_timeout_issue(log.interval, log.timeout, config.global_, path)
        taken: dict[str, str] = {}
        for preset_index, preset in enumerate(log.presets):
            if preset in log.presets[:preset_index]:
                yield (*path, "presets", preset_index), f"duplicate preset '{preset}'"
                continue
            for name in LOG_PATTERN_PRESETS[preset]:
                taken.setdefault(name, f"preset '{preset}'")
        for pattern_index, pattern in enumerate(log.patterns):
            if pattern.name in taken:
                yield (*path, "patterns", pattern_index, "name"), (
                    f"duplicate pattern name '{pattern.name}' (also given by {taken[pattern.name]})"
                )
            else:
                taken[pattern.name] = f"patterns[{pattern_index}]"
