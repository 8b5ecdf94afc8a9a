"""Turn stored results into the Prometheus text format, and keep the rendering cached.

A scrape is a memory copy: the rendered text (plain and gzip) is rebuilt only when a result changed,
a result went stale, or the cache grew old. Rebuilding formats only what changed: each check's families
become text once, when its result lands (exporter/text_format.py), and a rendering joins those pieces,
each metric family's lines in one group under one # HELP / # TYPE as the format requires. Only the
per-check bookkeeping, the exporter's own metrics and the process metrics are formatted every time.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from exporter.metrics import HistogramValue, MetricFamily, MetricSpec, MetricType
from exporter.process_metrics import ProcessMetrics
from exporter.self_metrics import check_families
from exporter.store import CheckKey, CheckState, ResultStore
from exporter.text_format import header, samples_text

if TYPE_CHECKING:  # the client library is only loaded by `once --metrics`, never by serve
    from prometheus_client.metrics_core import Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_CACHE_AGE = 30.0  # seconds; keeps process metrics reasonably fresh on a quiet exporter


class Rendered:
    """One rendering: the plain text now, its gzip form made on the first request that accepts gzip.

    Compressing when asked rather than on every render: an exporter that nobody scrapes does no gzip at all,
    and a scraped one compresses once per scrape at most, not once per result that lands (gzip was a
    quarter of the CPU of one minute of 10,000 series' checks when every render compressed).
    """

    def __init__(self, plain: bytes, version: int, valid_until: float) -> None:
        self.plain = plain
        self.version = version
        self.valid_until = valid_until
        self._gzipped: bytes | None = None
        self._lock = threading.Lock()

    @property
    def gzipped(self) -> bytes:
        with self._lock:  # concurrent gzip scrapes of one rendering compress it once
            if self._gzipped is None:
                self._gzipped = gzip.compress(self.plain, compresslevel=1)
            return self._gzipped


def families_for(
    states: Iterable[CheckState], now_monotonic: float, target: str | None = None
) -> list[MetricFamily]:
    """The data families of every fresh check (of one target when given) plus the per-check metrics."""
    selected = [s for s in states if target is None or s.key.target == target]
    families: list[MetricFamily] = []
    for state in selected:
        if not state.is_stale(now_monotonic):
            families.extend(state.families)
    families.extend(check_families(selected, now_monotonic))
    return families


def to_client_metrics(families: Iterable[MetricFamily]) -> list[Metric]:
    """Merge families by name and convert them to prometheus_client metrics."""
    from prometheus_client.metrics_core import Metric  # noqa: PLC0415 - loaded on first use

    merged: dict[str, Metric] = {}
    for family in families:
        spec = family.spec
        metric = merged.get(spec.name)
        if metric is None:
            base = spec.name.removesuffix("_total") if spec.type is MetricType.COUNTER else spec.name
            metric = Metric(base, spec.help, spec.type.value)
            merged[spec.name] = metric
        for sample in family.samples:
            labels = dict(sample.labels)
            if isinstance(sample.value, HistogramValue):
                _add_histogram(metric, spec.name, labels, sample.value)
            else:
                metric.add_sample(spec.name, labels, sample.value)
    return list(merged.values())


def _add_histogram(metric: Metric, name: str, labels: dict[str, str], value: HistogramValue) -> None:
    for bound, cumulative in value.buckets:
        metric.add_sample(f"{name}_bucket", {**labels, "le": _le(bound)}, cumulative)
    if not value.buckets or value.buckets[-1][0] != float("inf"):
        metric.add_sample(f"{name}_bucket", {**labels, "le": "+Inf"}, value.count)
    metric.add_sample(f"{name}_count", labels, value.count)
    metric.add_sample(f"{name}_sum", labels, value.sum)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


FormattedFamilies = tuple[tuple[MetricSpec, str], ...]


def format_families(families: Iterable[MetricFamily]) -> FormattedFamilies:
    """Each family's sample lines as text, with its spec (for the header and the grouping by name)."""
    return tuple((family.spec, samples_text(family)) for family in families)


def assemble(pieces: Iterable[FormattedFamilies]) -> str:
    """The exposition text of formatted pieces: families of the same name grouped under the first one's
    header, in the order names are first seen."""
    groups: dict[str, tuple[MetricSpec, list[str]]] = {}
    for piece in pieces:
        for spec, text in piece:
            group = groups.get(spec.name)
            if group is None:
                groups[spec.name] = (spec, [text])
            else:
                group[1].append(text)
    return "".join(header(spec) + "".join(texts) for spec, texts in groups.values())


class _FormattedChecks:
    """The text of each check, formatted when its state changes and reused until the next change: its data
    families (kept while only the bookkeeping changes) and what the scheduler counted about it."""

    def __init__(self) -> None:
        self._data: dict[CheckKey, tuple[tuple[MetricFamily, ...], FormattedFamilies]] = {}
        self._bookkeeping: dict[CheckKey, tuple[CheckState, bool, FormattedFamilies]] = {}

    def data(self, state: CheckState) -> FormattedFamilies:
        cached = self._data.get(state.key)
        if cached is not None and cached[0] is state.families:
            return cached[1]
        formatted = format_families(state.families)
        self._data[state.key] = (state.families, formatted)
        return formatted

    def bookkeeping(self, state: CheckState, now_monotonic: float) -> FormattedFamilies:
        stale = state.is_stale(now_monotonic)
        cached = self._bookkeeping.get(state.key)
        if cached is not None and cached[0] is state and cached[1] == stale:
            return cached[2]
        formatted = format_families(check_families([state], now_monotonic))
        self._bookkeeping[state.key] = (state, stale, formatted)
        return formatted

    def forget_all_but(self, keys: Iterable[CheckKey]) -> None:
        """Drop the text of checks a reload removed."""
        kept = set(keys)
        for texts in (self._data, self._bookkeeping):
            for key in [key for key in texts if key not in kept]:
                del texts[key]


class Exposition:
    """Caches renderings of the store, per scope (all targets, or one target for /probe)."""

    def __init__(
        self,
        store: ResultStore,
        exporter_families: Callable[[], list[MetricFamily]],
        monotonic: Callable[[], float] = time.monotonic,
        include_process_metrics: bool = True,
    ) -> None:
        self._store = store
        self._exporter_families = exporter_families
        self._monotonic = monotonic
        self._lock = threading.Lock()
        # Concurrent scrapes of a changed store wait for one render instead of each rendering it.
        self._render_lock = threading.Lock()
        self._cache: dict[str | None, Rendered] = {}
        self._renders = 0
        self._formatted = _FormattedChecks()  # used under _render_lock only
        self._process = ProcessMetrics() if include_process_metrics else None

    @property
    def renders(self) -> int:
        return self._renders

    def get(self, target: str | None = None) -> Rendered:
        """The current rendering; re-rendered only if something changed since the cached one."""
        version = self._store.version
        now = self._monotonic()
        cached = self._fresh(target, version, now)
        if cached is not None:
            return cached
        with self._render_lock:
            cached = self._fresh(target, self._store.version, self._monotonic())
            if cached is not None:  # another scrape rendered it while this one waited
                return cached
            rendered = self._render(target)
            with self._lock:
                self._cache[target] = rendered
                if target is not None and len(self._cache) > 64:  # bounded: one entry per target at most
                    self._cache = {None: self._cache[None]} if None in self._cache else {}
        return rendered

    def _fresh(self, target: str | None, version: int, now: float) -> Rendered | None:
        with self._lock:
            cached = self._cache.get(target)
        if cached is not None and cached.version == version and now < cached.valid_until:
            return cached
        return None

    def _render(self, target: str | None) -> Rendered:
        version, states = self._store.snapshot()
        now = self._monotonic()
        with self._lock:
            self._renders += 1
        selected = [state for state in states if target is None or state.key.target == target]
        if target is None:
            self._formatted.forget_all_but(state.key for state in states)
        pieces = [self._formatted.data(state) for state in selected if not state.is_stale(now)]
        pieces += [self._formatted.bookkeeping(state, now) for state in selected]
        if target is None:
            pieces.append(format_families(self._exporter_families()))
            if self._process is not None:
                pieces.append(format_families(self._process.families()))
        text = assemble(pieces).encode()
        return Rendered(text, version, _valid_until(states, now))


def _valid_until(states: Iterable[CheckState], now: float) -> float:
    """The rendering is valid until the first fresh result would turn stale, or MAX_CACHE_AGE."""
    until = now + MAX_CACHE_AGE
    for state in states:
        if state.last_run_monotonic is not None and not state.is_stale(now):
            until = min(until, state.last_run_monotonic + state.stale_after())
    return until


class RenderLoop:
    """Re-renders in the background as soon as results change, so scrapes rarely render themselves."""

    def __init__(self, exposition: Exposition, store: ResultStore, debounce: float = 0.05) -> None:
        self._exposition = exposition
        self._store = store
        self._debounce = debounce
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="erp-render", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        version = -1
        while not self._stop.is_set():
            version = self._store.wait_for_change(version, timeout=MAX_CACHE_AGE / 2)
            if self._stop.wait(self._debounce):  # let a burst of results land before rendering
                return
            self._exposition.get()
