"""Running the real exporter core (App: config -> scheduler -> store -> exposition) inside a test."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from exporter.app import App
from exporter.checks.builtin import default_registry
from exporter.db.connstr import ConnectionSpec
from exporter.db.pool import Backoff
from exporter.db.target import TargetDatabase
from exporter.store import CheckKey, CheckState

T = TypeVar("T")


def odbc_database(
    driver: str,
    attributes: dict[str, str],
    user: str | None = None,
    password: str | None = None,
    *,
    name: str = "t",
    max_connections: int = 2,
) -> TargetDatabase:
    """A TargetDatabase reached through a real ODBC driver, with the short timeouts and backoff tests want."""
    spec = ConnectionSpec(
        driver=driver,
        dsn=None,
        attributes=attributes,
        username=user,
        password=password if user else None,
        connect_timeout=5,
        read_timeout=30,
    )
    return TargetDatabase(name, spec, max_connections=max_connections, backoff=Backoff(0.1, 0.5))


class RunningApp:
    def __init__(self, app: App) -> None:
        self.app = app

    def state(self, target: str, check: str) -> CheckState:
        state = self.app.store.get(CheckKey(target, check))
        assert state is not None, f"no check {target}/{check} configured"
        return state

    def metrics(self) -> str:
        return self.app.exposition.get().plain.decode()

    def value(self, name: str, **labels: str) -> float | None:
        """The value of one series in the current exposition (None if absent)."""
        return sample_value(self.metrics(), name, **labels)

    def wait_for_run(self, target: str, check: str, after_runs: int, timeout: float) -> CheckState:
        """Wait until the check has ended more than `after_runs` runs."""
        return wait_until(
            lambda: _if(self.state(target, check), lambda s: s.runs_total > after_runs),
            timeout,
            f"{target}/{check} did not run again within {timeout}s",
        )


def _if(state: CheckState, predicate: Callable[[CheckState], bool]) -> CheckState | None:
    return state if predicate(state) else None


def wait_until(probe: Callable[[], T | None], timeout: float, message: str, interval: float = 0.05) -> T:
    """Poll `probe` until it returns something truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(interval)


def sample_value(text: str, name: str, **labels: str) -> float | None:
    """Find one sample in exposition text by name and a subset of its labels."""
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        series_name = head.split("{", 1)[0]
        if series_name != name:
            continue
        if all(f'{key}="{val}"' in head for key, val in labels.items()):
            return float(value)
    return None


@contextmanager
def running_app(tmp_path: Path, config_text: str) -> Iterator[RunningApp]:
    """Start the exporter core on a config; always stopped afterwards."""
    path = tmp_path / "erp-exporter.yml"
    path.write_text(config_text)
    app = App(path, default_registry())
    app.start()
    try:
        yield RunningApp(app)
    finally:
        app.stop()


def thread_count() -> int:
    return threading.active_count()


def open_fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))
