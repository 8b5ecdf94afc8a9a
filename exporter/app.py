"""Wiring: config -> databases -> checks -> scheduler -> store -> exposition, and reloads.

A reload builds a complete new runtime from the new file first; only if that succeeds does it replace
the running one, so a broken config never stops monitoring (Prometheus' own reload semantics).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from exporter.checks.registry import CheckRegistry, ScheduledCheck
from exporter.config.connection import connection_spec, read_timeout
from exporter.config.loader import ConfigError, LoadedConfig, load_config
from exporter.db.pool import Backoff
from exporter.db.target import TargetDatabase
from exporter.exposition import Exposition, RenderLoop
from exporter.logs import SecretMask
from exporter.metrics import MetricFamily
from exporter.run import Check
from exporter.scheduler import Job, Scheduler, SchedulerSettings
from exporter.self_metrics import exporter_families
from exporter.store import CheckKey, CheckMeta, ResultStore
from exporter.workers import WorkerPool

log = logging.getLogger(__name__)

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


def build_runtime(
    loaded: LoadedConfig,
    registry: CheckRegistry,
    store: ResultStore,
    only: Callable[[CheckKey], bool] | None = None,
) -> Runtime:
    """Build databases, checks and jobs for a config, without starting anything.

    Every kind is built by its registered builder, which decides each check's interval and timeout; `only`
    keeps the checks it accepts (`erp-exporter audit` runs one), the rest are not made into jobs.
    """
    config = loaded.config
    settings = config.global_
    databases: dict[str, TargetDatabase] = {}
    jobs: list[Job] = []
    metas: dict[CheckKey, CheckMeta] = {}
    checks: dict[CheckKey, Check] = {}

    def add(key: CheckKey, kind: str, built: ScheduledCheck, series_limit: int | None, labels: dict[str, str]) -> None:
        if only is not None and not only(key):
            return
        jobs.append(Job(key=key, check=built.check, interval=built.interval, timeout=built.timeout))
        metas[key] = CheckMeta(
            kind=kind,
            interval=built.interval,
            timeout=built.timeout,
            series_limit=series_limit or settings.series_limit,
            labels=labels,
        )
        checks[key] = built.check

    for target in config.targets:
        # the read timeout is settled below, once the checks that share the connection are built
        provisional = read_timeout(settings.timeout, settings.cancel_grace)
        spec = connection_spec(target, loaded.passwords.get(target.name), provisional)
        database = TargetDatabase(
            target.name, spec, target.max_connections, Backoff(target.backoff.initial, target.backoff.max)
        )
        databases[target.name] = database
        built_checks = [
            (entry, built)
            for entry in target.checks_with_defaults()
            for built in registry.build_target_checks(entry, database, loaded)
        ]
        # the connection must outlast the longest check that uses it (an audit may run for minutes)
        longest = max((built.timeout for _, built in built_checks), default=settings.timeout)
        database.set_read_timeout(read_timeout(longest, settings.cancel_grace))
        target_labels = {**target.labels, "target": target.name}
        for entry, built in built_checks:
            labels = {**target_labels, **built.labels}
            add(CheckKey(target.name, built.name), entry.kind_name, built, entry.series_limit, labels)

    for kind, built in registry.build_exporter_checks(loaded):
        add(CheckKey("", built.name), kind.kind, built, None, dict(built.labels))

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
