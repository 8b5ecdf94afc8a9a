"""Wiring: config -> databases -> checks -> scheduler -> store -> exposition, and reloads.

A reload builds a complete new runtime from the new file first; only if that succeeds does it replace
the running one, so a broken config never stops monitoring (Prometheus' own reload semantics).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from exporter.checks.backup import BackupCheck, BackupFormat
from exporter.checks.base import Check
from exporter.checks.calendar import CalendarCheck
from exporter.checks.host import HostCheck
from exporter.checks.http_transaction import (
    Credentials,
    HttpRequest,
    HttpScenario,
    HttpTransactionCheck,
    TlsSettings,
    TrytonCall,
)
from exporter.checks.log_follow import LogCheck, patterns_for
from exporter.checks.pack import entry_timeouts
from exporter.checks.process_group import ProcessGroupCheck
from exporter.checks.registry import CheckRegistry
from exporter.checks.transactions_metrics import DEFAULT_BUCKETS
from exporter.config.connection import connection_spec, read_timeout
from exporter.config.loader import ConfigError, LoadedConfig, load_config
from exporter.config.model import (
    DEFAULT_TARGET_CHECKS,
    CheckSettings,
    DbResponseCheckConfig,
    DbSessionsCheckConfig,
    HttpTransactionConfig,
    PackCheckConfig,
    PrivilegesCheckConfig,
    TargetConfig,
    TrytonTransactionConfig,
)
from exporter.config.schedule import check_timeout
from exporter.config.semantics import effective_interval, effective_timeout
from exporter.db.pool import Backoff
from exporter.db.target import TargetDatabase
from exporter.exposition import Exposition, RenderLoop
from exporter.logs import SecretMask
from exporter.metrics import MetricFamily
from exporter.scheduler import Job, Scheduler, SchedulerSettings
from exporter.self_metrics import exporter_families
from exporter.store import CheckKey, CheckMeta, ResultStore
from exporter.workers import WorkerPool

log = logging.getLogger(__name__)

_DEFAULT_CHECK_CONFIGS: dict[str, type[CheckSettings]] = {
    "db_response": DbResponseCheckConfig,
    "privileges": PrivilegesCheckConfig,
    "db_sessions": DbSessionsCheckConfig,
}


@dataclass
class Runtime:
    """Everything built from one config; replaced as a whole on reload."""

    loaded: LoadedConfig
    databases: dict[str, TargetDatabase]
    jobs: list[Job]
    metas: dict[CheckKey, CheckMeta]
    workers: WorkerPool
    scheduler: Scheduler
    checks: dict[CheckKey, Check] = field(default_factory=dict)

    def stop(self) -> None:
        self.scheduler.stop(wait=2.0)
        self.workers.stop()
        for database in self.databases.values():
            database.close()


def target_checks(target: TargetConfig) -> list[CheckSettings]:
    """The target's configured checks, plus the default kinds it did not configure itself."""
    checks: list[CheckSettings] = list(target.checks)
    configured = {check.kind_name for check in checks}
    for kind in DEFAULT_TARGET_CHECKS:
        if kind not in configured:
            checks.append(_DEFAULT_CHECK_CONFIGS[kind].model_validate({"kind": kind}))
    return checks


def config_relative_path(base_dir: Path, path: str) -> str:
    """A file name from the config: absolute as it is, relative from the config file's directory."""
    return os.path.abspath(path if os.path.isabs(path) else os.path.join(base_dir, path))


def http_transaction_check(
    transaction: HttpTransactionConfig, loaded: LoadedConfig, timeout: float
) -> HttpTransactionCheck:
    """The check of one `http_transactions` entry, its files resolved and its password filled in."""
    tls = transaction.tls

    def path(name: str | None) -> str | None:
        return None if name is None else config_relative_path(loaded.base_dir, name)

    steps: list[TrytonCall | HttpRequest] = []
    credentials = None
    database = None
    if transaction.credentials is not None:
        password = loaded.http_passwords.get(transaction.name, "")
        credentials = Credentials(transaction.credentials.username, password)
    if isinstance(transaction, TrytonTransactionConfig):
        database = transaction.database
        steps = [TrytonCall(step.name, step.method, tuple(step.params)) for step in transaction.steps]
    else:
        steps = [
            HttpRequest(
                name=step.name,
                method=step.method,
                path=step.path,
                body=step.body,
                json_body=step.json_body,
                expect_status=step.expect_status,
                expect_regex=step.expect_regex,
                expect_json_path=step.expect_json_path,
            )
            for step in transaction.steps
        ]
    scenario = HttpScenario(
        transaction=transaction.name,
        base_url=transaction.base_url,
        protocol=transaction.protocol,
        timeout=timeout,
        step_timeout=min(transaction.step_timeout or timeout, timeout),
        steps=steps,
        database=database,
        credentials=credentials,
        tls=TlsSettings(
            verify=tls.verify,
            ca_file=path(tls.ca_file),
            cert_file=path(tls.cert_file),
            key_file=path(tls.key_file),
            server_name=tls.server_name,
        ),
        buckets=tuple(transaction.buckets or DEFAULT_BUCKETS),
    )
    return HttpTransactionCheck(f"http_transaction:{transaction.name}", scenario)


def build_runtime(
    loaded: LoadedConfig,
    registry: CheckRegistry,
    store: ResultStore,
    only: Callable[[CheckKey], bool] | None = None,
) -> Runtime:
    """Build databases, checks and jobs for a config, without starting anything.

    `only` keeps the checks it accepts (`erp-exporter audit` runs one); the rest are not built into jobs.
    """
    config = loaded.config
    settings = config.global_
    databases: dict[str, TargetDatabase] = {}
    jobs: list[Job] = []
    metas: dict[CheckKey, CheckMeta] = {}
    checks: dict[CheckKey, Check] = {}

    def add(
        key: CheckKey,
        check: Check,
        kind: str,
        interval: float,
        timeout: float,
        series_limit: int | None,
        labels: dict[str, str],
    ) -> None:
        if only is not None and not only(key):
            return
        jobs.append(Job(key=key, check=check, interval=interval, timeout=timeout))
        metas[key] = CheckMeta(
            kind=kind,
            interval=interval,
            timeout=timeout,
            series_limit=series_limit or settings.series_limit,
            labels=labels,
        )
        checks[key] = check

    for target in config.targets:
        check_settings = target_checks(target)
        longest = max(effective_timeout(c, settings) for c in check_settings)
        # each audit has its own timeout (60s by default): the connection's read timeout must outlast it
        audits = [a for (name, _), found in loaded.audits.items() if name == target.name for a in found]
        longest = max([longest, *(a.timeout for a in audits)])
        # so has each query of a pack
        packs = [c for c in check_settings if isinstance(c, PackCheckConfig)]
        longest = max([longest, *(timeout for entry in packs for timeout in entry_timeouts(entry))])
        spec = connection_spec(target, loaded.passwords.get(target.name), read_timeout(longest, settings.cancel_grace))
        database = TargetDatabase(
            target.name, spec, target.max_connections, Backoff(target.backoff.initial, target.backoff.max)
        )
        databases[target.name] = database
        labels = {**target.labels, "target": target.name}
        for check_config in check_settings:
            for built in registry.build_target_checks(check_config, database, loaded):
                add(
                    CheckKey(target.name, built.name),
                    built.check,
                    check_config.kind_name,
                    built.interval or effective_interval(check_config, settings),
                    built.timeout or effective_timeout(check_config, settings),
                    check_config.series_limit,
                    labels,
                )

    if config.host.enabled:
        host = config.host
        interval = host.interval or settings.interval
        add(
            CheckKey("", "host"),
            HostCheck(
                "host",
                exclude_fstypes=frozenset(host.exclude_fstypes),
                exclude_mountpoints=host.exclude_mountpoints,
                include_devices=host.include_devices,
            ),
            "host",
            interval,
            check_timeout(host.timeout, settings.timeout, interval),
            None,
            {},
        )
    for group in config.process_groups:
        interval = group.interval or settings.interval
        add(
            CheckKey("", f"process_group:{group.name}"),
            ProcessGroupCheck(group.name, group.name, group.process_name, group.cmdline),
            "process_group",
            interval,
            check_timeout(group.timeout, settings.timeout, interval),
            None,
            {},
        )
    for backup in config.backups:
        add(
            CheckKey("", f"backup:{backup.name}"),
            BackupCheck(
                f"backup:{backup.name}",
                backup.name,
                config_relative_path(loaded.base_dir, backup.path),
                fmt=BackupFormat(backup.format),
                verify=backup.verify,
                verify_data=backup.verify_data,
                max_files_checked=backup.max_files_checked,
                min_age=backup.min_age,
                pg_restore=backup.pg_restore,
            ),
            "backup",
            backup.interval,
            backup.effective_timeout,
            None,
            {},
        )
    for log_file in config.logs:
        add(
            CheckKey("", f"log:{log_file.name}"),
            LogCheck(
                f"log:{log_file.name}",
                log_file.name,
                config_relative_path(loaded.base_dir, log_file.path),
                patterns_for(log_file.presets, {p.name: p.regex for p in log_file.patterns}),
                max_read_bytes=log_file.max_read_bytes,
                max_line_bytes=log_file.max_line_bytes,
            ),
            "log",
            log_file.interval,
            check_timeout(log_file.timeout, settings.timeout, log_file.interval),
            None,
            {},
        )
    for calendar in config.calendars:
        add(
            CheckKey("", f"calendar:{calendar.name}"),
            CalendarCheck.from_config(calendar),
            "calendar",
            calendar.interval,
            check_timeout(calendar.timeout, settings.timeout, calendar.interval),
            None,
            {},
        )

    for transaction in config.http_transactions:
        interval = transaction.interval or settings.interval
        timeout = check_timeout(transaction.timeout, settings.timeout, interval)
        add(
            CheckKey("", f"http_transaction:{transaction.name}"),
            http_transaction_check(transaction, loaded, timeout),
            "http_transaction",
            interval,
            timeout,
            None,
            dict(transaction.labels),
        )

    workers = WorkerPool(settings.workers, settings.abandoned_workers_limit)
    scheduler = Scheduler(
        jobs, store, workers, SchedulerSettings(jitter=settings.jitter, cancel_grace=settings.cancel_grace)
    )
    return Runtime(loaded, databases, jobs, metas, workers, scheduler, checks)


def run_checks_once(runtime: Runtime, store: ResultStore) -> None:
    """Run every job of a runtime once through its scheduler (timeouts, cancel, abandon), then stop it.

    The one run path of `erp-exporter once` and `erp-exporter audit`; `serve` schedules the same jobs.
    """
    store.configure(runtime.metas)
    runtime.scheduler.start(schedule=False)
    try:
        runtime.scheduler.run_once(timeout=runtime.scheduler.longest_run())
    finally:
        runtime.stop()


class App:
    """The running exporter: one store and exposition for its lifetime, a runtime per config."""

    def __init__(self, config_path: Path, registry: CheckRegistry, mask: SecretMask | None = None) -> None:
        self.config_path = config_path
        self.registry = registry
        self.mask = mask or SecretMask()
        self.store = ResultStore()
        self.started_at = time.time()
        self._lock = threading.Lock()
        # Reloads come from SIGHUP threads and HTTP requests; two at once would swap runtimes crosswise.
        self._reload_lock = threading.Lock()
        self._secrets: list[str] = []
        self._runtime: Runtime | None = None
        self._reload_ok = False
        self._reload_time: float | None = None
        self.last_reload_error = ""
        self.exposition = Exposition(self.store, self._exporter_families)
        self._render_loop = RenderLoop(self.exposition, self.store)

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the config and start checking; raises ConfigError when the first config is invalid."""
        loaded = load_config(self.config_path)
        self._activate(loaded)
        self._render_loop.start()

    def reload(self) -> bool:
        """Re-read the config; on any error keep the running one and report it. Returns success."""
        with self._reload_lock:
            try:
                loaded = load_config(self.config_path)
                self._activate(loaded)
            except Exception as exc:  # whatever breaks, the running config stays
                message = str(exc) if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self._reload_ok = False
                    self.last_reload_error = self.mask.apply(message)
                self.store.touch()
                log.error("config reload failed; keeping the running config", extra={"err": message})
                return False
        log.info("config reloaded", extra={"file": str(self.config_path)})
        return True

    def stop(self) -> None:
        self._render_loop.stop()
        with self._lock:
            runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.stop()

    # --- state for the HTTP layer -------------------------------------------------------------------

    @property
    def runtime(self) -> Runtime | None:
        with self._lock:
            return self._runtime

    def ready(self) -> bool:
        runtime = self.runtime
        return runtime is not None and runtime.scheduler.first_round_done.is_set()

    def target_names(self) -> list[str]:
        runtime = self.runtime
        return [] if runtime is None else list(runtime.databases)

    def reload_status(self) -> tuple[bool, float | None, str]:
        with self._lock:
            return self._reload_ok, self._reload_time, self.last_reload_error

    # -----------------------------------------------------------------------------------------------

    def _activate(self, loaded: LoadedConfig) -> None:
        # Until the old runtime has stopped, its connections may still log its secrets: mask both.
        old_secrets = self._secrets
        self.mask.update([*old_secrets, *loaded.secrets()])
        runtime = build_runtime(loaded, self.registry, self.store)
        with self._lock:
            old, self._runtime = self._runtime, runtime
            self._reload_ok = True
            self._reload_time = time.time()
            self.last_reload_error = ""
        self.store.configure(runtime.metas)
        if old is not None:
            old.stop()
        self._secrets = list(loaded.secrets())
        self.mask.update(self._secrets)
        runtime.scheduler.start()

    def _exporter_families(self) -> list[MetricFamily]:
        runtime = self.runtime
        if runtime is None:
            return []
        ok, reload_time, _ = self.reload_status()
        return exporter_families(
            runtime.workers.stats(), ok, reload_time, self.exposition.renders, self.started_at
        )
