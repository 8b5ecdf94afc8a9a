"""The registry of check kinds: the app builds one and passes it around; the core never lists kinds.

Each kind registers the metrics it may emit (used by the README metric list test and `erp-exporter
metrics`) and one builder: from an entry of `targets[].checks` (`build_for_target`), or from a section of
its own in the config, such as `host` or `backups` (`build_for_exporter`). A builder returns the kind's
scheduled checks with interval and timeout already decided (exporter.config.schedule), so the app wires
every kind the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from exporter.config.loader import LoadedConfig
from exporter.config.model import CheckSettings
from exporter.config.semantics import entry_schedule
from exporter.db.target import TargetDatabase
from exporter.metrics import MetricSpec
from exporter.run import Check


@dataclass(frozen=True)
class ScheduledCheck:
    """One check a builder yields, with its name (unique per target), schedule and own labels."""

    name: str
    check: Check
    interval: float
    timeout: float
    labels: Mapping[str, str] = field(default_factory=dict)


# One entry of targets[].checks -> its checks (one, or several: one per audit, one per pack query). The
# LoadedConfig carries what was resolved from outside the file when the config was loaded.
TargetChecksBuilder = Callable[[CheckSettings, TargetDatabase, LoadedConfig], list[ScheduledCheck]]
# The config -> the checks of a kind configured outside targets (the host, each backup set, log file, ...).
ExporterChecksBuilder = Callable[[LoadedConfig], list[ScheduledCheck]]


def one_check_per_entry(build: Callable[[CheckSettings, TargetDatabase], Check]) -> TargetChecksBuilder:
    """The builder of a kind whose entry is one check, named and scheduled by the entry itself."""

    def build_entry(settings: CheckSettings, database: TargetDatabase, loaded: LoadedConfig) -> list[ScheduledCheck]:
        schedule = entry_schedule(settings, loaded.config.global_)
        return [ScheduledCheck(settings.effective_name, build(settings, database), schedule.interval, schedule.timeout)]

    return build_entry


@dataclass(frozen=True)
class CheckKind:
    """A kind of check: the metrics it may emit and how its checks are built from the config."""

    kind: str
    metrics: tuple[MetricSpec, ...]
    build_for_target: TargetChecksBuilder | None = None
    build_for_exporter: ExporterChecksBuilder | None = None


class CheckRegistry:
    """The kinds of check the exporter knows, in registration order (the order their checks are built)."""

    def __init__(self) -> None:
        self._kinds: dict[str, CheckKind] = {}

    def register(self, kind: CheckKind) -> None:
        if kind.kind in self._kinds:
            raise ValueError(f"check kind {kind.kind!r} registered twice")
        if kind.build_for_target is not None and kind.build_for_exporter is not None:
            raise ValueError(f"check kind {kind.kind!r} is built either per target entry or from its own section")
        self._kinds[kind.kind] = kind

    def build_target_checks(
        self, settings: CheckSettings, database: TargetDatabase, loaded: LoadedConfig
    ) -> list[ScheduledCheck]:
        """The checks one entry of targets[].checks yields."""
        kind = self._kinds.get(settings.kind_name)
        if kind is None or kind.build_for_target is None:
            raise KeyError(f"no target check kind {settings.kind_name!r}")
        return kind.build_for_target(settings, database, loaded)

    def build_exporter_checks(self, loaded: LoadedConfig) -> Iterator[tuple[CheckKind, ScheduledCheck]]:
        """The checks of every kind configured outside targets, each with its kind."""
        for kind in self._kinds.values():
            if kind.build_for_exporter is not None:
                for built in kind.build_for_exporter(loaded):
                    yield kind, built

    def kinds(self) -> Iterator[CheckKind]:
        return iter(self._kinds.values())

    def metric_specs(self) -> list[MetricSpec]:
        """Every metric any registered check can emit, without duplicates."""
        seen: dict[str, MetricSpec] = {}
        for kind in self._kinds.values():
            for spec in kind.metrics:
                seen.setdefault(spec.name, spec)
        return list(seen.values())
