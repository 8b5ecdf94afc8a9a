"""Fuzzing what the exporter shows: label values and error messages holding quotes, backslashes, newlines,
control characters and text that was not valid UTF-8 (a driver decoding bytes with surrogateescape) always
give exposition text that the real `promtool check metrics` accepts and that parses back to the same values,
and a status page whose markup they cannot change.

promtool is started once for the whole batch: every example becomes its own check in one store, rendered once.
"""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser

from alerting_rules import binary
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from exporter.checks.base import ErrorReason
from exporter.db.connstr import ConnectionSpec
from exporter.db.pool import Backoff
from exporter.db.target import TargetDatabase
from exporter.exposition import Exposition
from exporter.http.status_page import StatusView, render_status_page
from exporter.metrics import gauge
from exporter.store import CheckKey, CheckMeta, Outcome, ResultStore

VALUE = gauge("erp_fuzz_value", "A value whose labels came from a database row.", "row")

# The characters that break formats: quotes, backslashes, line breaks, markup, NUL, DEL, C1 controls, the
# Unicode line separators, lone surrogates (what invalid UTF-8 becomes) and plain letters around them.
HOSTILE_CHARS = st.one_of(
    st.sampled_from([*'"\\\n\r\t\'<>&{}=,# \x00\x7f\x85\u2028\u2029\ufeff\udc80\udcff\ud800', "\\n", '\\"']),
    st.characters(codec=None, categories=["L", "N", "P", "S", "Cc", "Cs", "Zs"]),
)
HOSTILE = st.one_of(
    st.lists(HOSTILE_CHARS, max_size=20).map("".join),
    st.binary(max_size=20).map(lambda raw: raw.decode("utf-8", errors="surrogateescape")),
)


def _utf8_replaced(text: str) -> str:
    """What a value must read once served as UTF-8: a lone surrogate (an undecodable byte) becomes U+FFFD."""
    return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)


def meta(static: str) -> CheckMeta:
    return CheckMeta(kind="fuzz", interval=60.0, timeout=10.0, series_limit=100, labels={"environment": static})


def store_with(cases: list[tuple[str, str, str]]) -> ResultStore:
    """One check per case: a row label, a static target label and an error message, all hostile."""
    store = ResultStore()
    keys = {CheckKey(f"t{index}", "fuzz"): meta(static) for index, (_, static, _) in enumerate(cases)}
    store.configure(keys)
    for index, (row, _, error) in enumerate(cases):
        family = VALUE.family().add(float(index), row=row, target=f"t{index}")
        store.record(CheckKey(f"t{index}", "fuzz"), Outcome(
            success=False, duration=0.01, families=[family], error_reason=ErrorReason.QUERY, error_message=error,
        ))
    return store


def exposition_text(store: ResultStore) -> str:
    """The /metrics body as served (bytes), decoded as a scraper decodes it: strictly, as UTF-8."""
    return Exposition(store, lambda: [], include_process_metrics=False).get().plain.decode("utf-8")


CASES = st.tuples(HOSTILE, HOSTILE, HOSTILE)


def test_promtool_accepts_the_exposition_of_every_hostile_value() -> None:
    collected: list[tuple[str, str, str]] = []

    @settings(max_examples=1500)
    @given(case=CASES)
    def parses_back_to_the_same_values(case: tuple[str, str, str]) -> None:
        row, static, _ = case
        text = exposition_text(store_with([case]))
        values = [sample for family in text_string_to_metric_families(text) if family.name == "erp_fuzz_value"
                  for sample in family.samples]
        assert [(s.labels["row"], s.labels["environment"]) for s in values] == [
            (_utf8_replaced(row), _utf8_replaced(static))
        ]
        collected.append(case)

    parses_back_to_the_same_values()
    text = exposition_text(store_with(collected))
    assert text.count("erp_fuzz_value{") == len(collected) >= 1500
    done = subprocess.run([binary("promtool"), "check", "metrics"], input=text.encode(), capture_output=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")


# --- the status page ----------------------------------------------------------------------------------


class _Markup(HTMLParser):
    """The tags of a page in order, and the text of its table cells: what escaping must leave unchanged."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(f"<{tag} {sorted(attrs)}>")

    def handle_endtag(self, tag: str) -> None:
        self.tags.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def markup(page: str) -> _Markup:
    parser = _Markup()
    parser.feed(page)
    parser.close()
    return parser


def database(name: str) -> TargetDatabase:
    spec = ConnectionSpec(driver="SQLite3", dsn=None, attributes={"database": "/nonexistent/erp.db"},
                          username=None, password=None, connect_timeout=1.0, read_timeout=1.0)
    return TargetDatabase(name, spec, 1, Backoff(1.0, 2.0))


def page_bytes(case: tuple[str, str, str], reload_error: str) -> bytes:
    """The status page as the server sends it (the server encodes with the same call)."""
    _, static, _ = case
    _, states = store_with([case]).snapshot()
    view = StatusView(states=states, databases={"t0": database("t0")}, reload_ok=not reload_error,
                      reload_error=reload_error, config_file="erp-exporter.yml", now_monotonic=0.0,
                      labels={"t0": {"environment": static}})
    return render_status_page(view, lambda text: text).encode("utf-8")


@settings(max_examples=800)
@given(case=CASES, reload_error=HOSTILE)
def test_the_status_page_escapes_every_hostile_value(case: tuple[str, str, str], reload_error: str) -> None:
    hostile = page_bytes(case, reload_error).decode("utf-8")
    plain = page_bytes(("x", "x", "x"), "x" if reload_error else "").decode("utf-8")
    assert markup(hostile).tags == markup(plain).tags  # no value opened or closed an element
    shown = "".join(markup(hostile).text)
    error = case[2]
    if error.strip() and "\r" not in error and "\x00" not in error:
        assert _utf8_replaced(error).strip() in shown
