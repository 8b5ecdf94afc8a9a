"""The list of every metric the exporter can expose, by the check kind that produces it.

`erp-exporter metrics` prints it as the Markdown table the README carries; a test keeps the README equal
to it and the live /metrics output within it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from exporter.checks.registry import CheckRegistry
from exporter.metrics import MetricSpec
from exporter.self_metrics import CHECK_METRICS, EXPORTER_METRICS


@dataclass(frozen=True)
class CatalogEntry:
    source: str  # the check kind, or "every check" / "exporter"
    spec: MetricSpec


def metric_catalog(registry: CheckRegistry) -> list[CatalogEntry]:
    """Every metric once, with all the kinds that produce it (transactions come from several)."""
    sources: dict[str, list[str]] = {}
    specs: dict[str, MetricSpec] = {}
    for kind in registry.kinds():
        for spec in kind.metrics:
            known = specs.setdefault(spec.name, spec)
            extra = tuple(label for label in spec.labels if label not in known.labels)
            if extra:  # a kind may add labels (packs add `pack`): list every label the metric can carry
                specs[spec.name] = replace(known, labels=known.labels + extra)
            sources.setdefault(spec.name, []).append(kind.kind)
    entries = [CatalogEntry(", ".join(sources[name]), spec) for name, spec in specs.items()]
    entries += [CatalogEntry("every check", spec) for spec in CHECK_METRICS]
    entries += [CatalogEntry("exporter", spec) for spec in EXPORTER_METRICS]
    return entries


def catalog_markdown(registry: CheckRegistry) -> str:
    """A Markdown table: metric, type, labels, produced by, meaning."""
    lines = ["| metric | type | labels | from | meaning |", "|---|---|---|---|---|"]
    for entry in metric_catalog(registry):
        spec = entry.spec
        labels = ", ".join(f"`{label}`" for label in spec.labels) or "-"
        lines.append(f"| `{spec.name}` | {spec.type.value} | {labels} | {entry.source} | {spec.help} |")
    return "\n".join(lines) + "\n"
