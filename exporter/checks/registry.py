"""The registry of check kinds: the app builds one and passes it around; the core never lists kinds.

Each kind registers how to build its check from its config section, and which metrics it may emit
(used by the README metric list test and `erp-exporter metrics`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from exporter.checks.base import Check
from exporter.config.loader import LoadedConfig
from exporter.config.model import CheckSettings
from exporter.db.target import TargetDatabase
from exporter.metrics import MetricSpec

TargetCheckBuilder = Callable[[CheckSettings, TargetDatabase], Check]


@dataclass(frozen=True)
class ScheduledCheck:
    """One check a config entry yields; interval and timeout None mean the entry's effective ones."""

    name: str
    check: Check
    interval: float | None = None
    timeout: float | None = None


# One config entry -> several checks, each with its own name and schedule (e.g. one per audit). The
# LoadedConfig carries what was resolved from outside the file when the config was loaded.
TargetChecksBuilder = Callable[[CheckSettings, TargetDatabase, LoadedConfig], list[ScheduledCheck]]


@dataclass(frozen=True)
class CheckKind:
    kind: str
    metrics: tuple[MetricSpec, ...]
    build_for_target: TargetCheckBuilder | None = None  # None: not configured under targets[].checks
    build_many_for_target: TargetChecksBuilder | None = None  # instead of build_for_target


class CheckRegistry:
    def __init__(self) -> None:
        self._kinds: dict[str, CheckKind] = {}

    def register(self, kind: CheckKind) -> None:
        if kind.kind in self._kinds:
            raise ValueError(f"check kind {kind.kind!r} registered twice")
        self._kinds[kind.kind] = kind

    def build_target_check(self, settings: CheckSettings, database: TargetDatabase) -> Check:
        kind = self._kinds.get(settings.kind_name)
        if kind is None or kind.build_for_target is None:
            raise KeyError(f"no target check kind {settings.kind_name!r}")
        return kind.build_for_target(settings, database)

    def build_target_checks(
        self, settings: CheckSettings, database: TargetDatabase, loaded: LoadedConfig
    ) -> list[ScheduledCheck]:
        """The checks one entry of targets[].checks yields: one, or several for a build_many kind."""
        kind = self._kinds.get(settings.kind_name)
        if kind is not None and kind.build_many_for_target is not None:
            return kind.build_many_for_target(settings, database, loaded)
        return [ScheduledCheck(settings.effective_name, self.build_target_check(settings, database))]

    def kinds(self) -> Iterator[CheckKind]:
        return iter(self._kinds.values())

    def metric_specs(self) -> list[MetricSpec]:
        """Every metric any registered check can emit, without duplicates."""
        seen: dict[str, MetricSpec] = {}
        for kind in self._kinds.values():
            for spec in kind.metrics:
                seen.setdefault(spec.name, spec)
        return list(seen.values())
