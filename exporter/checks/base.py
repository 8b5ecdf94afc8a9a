"""What every check is: a named, scheduled producer of metric families.

Checks never write their own health metrics: the scheduler times every run and records success,
duration, last success and the error reason the same way for all (the node_exporter pattern).
"""

from __future__ import annotations

from typing import ClassVar

from exporter.metrics import MetricFamily, MetricSpec
from exporter.run import CancelToken, Check, CheckError, ErrorReason, RunContext

__all__ = ["BaseCheck", "CancelToken", "Check", "CheckError", "ErrorReason", "RunContext"]


class BaseCheck:
    """Convenience base: a name and no failure families."""

    kind: ClassVar[str] = ""
    metrics: ClassVar[tuple[MetricSpec, ...]] = ()

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def failure_families(self, error: CheckError) -> list[MetricFamily]:
        return []
