"""Counting business documents (exporter/checks/documents.py) on a real SQLite database through ODBC:
a small pack of the two document kinds over a table the test changes between rounds. The Tryton pack's
document queries are tested on real Tryton databases in tests/test_tryton_pack.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import odbc_database

from exporter.checks.base import CheckError, ErrorReason, RunContext
from exporter.checks.documents import DocumentEventsCheck, DocumentTotalsCheck
from exporter.db.target import TargetDatabase
from exporter.packs.loader import PackError, load_pack_file
from exporter.packs.model import PackQuery

PACK = """\
name: acme
description: An example ERP.
erp: acme
queries:
  - name: created
    kind: document_events
    columns: [id, document, event, occurred_at]
    documents:
      order: [created]
    sql:
      sqlite: >-
        SELECT id, 'order' AS document, 'created' AS event, created AS occurred_at
        FROM orders WHERE created >= :since ORDER BY created, id
  - name: progressed
    kind: document_totals
    columns: [document, event, total]
    documents:
      order: [confirmed]
      invoice: [posted]
    sql:
      sqlite: SELECT kind AS document, event, count(*) AS total FROM states GROUP BY kind, event
"""


def write_pack(tmp_path: Path, text: str = PACK) -> list[PackQuery]:
    path = tmp_path / "acme.yml"
    path.write_text(text)
    return load_pack_file(path, "acme.yml").queries


@pytest.fixture
def erp_file(tmp_path: Path) -> Path:
    path = tmp_path / "erp.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, created REAL)")
        connection.execute("CREATE TABLE states (kind TEXT, event TEXT)")
    return path


@pytest.fixture
def database(erp_file: Path) -> Iterator[TargetDatabase]:
    database = odbc_database("SQLite3", {"database": str(erp_file)}, name="erp", max_connections=1)
    yield database
    database.close()


def execute(path: Path, sql: str, *rows: tuple[object, ...]) -> None:
    with sqlite3.connect(path) as connection:
        if rows:
            connection.executemany(sql, rows)
        else:
            connection.execute(sql)


def counted(check: DocumentEventsCheck | DocumentTotalsCheck) -> dict[tuple[str, str], float]:
    (family,) = check.run(RunContext(timeout=10))
    assert family.name == "erp_business_documents_total"
    return {(s.labels["document"], s.labels["event"]): float(s.value) for s in family.samples}  # type: ignore[arg-type]


def totals_check(tmp_path: Path, database: TargetDatabase) -> DocumentTotalsCheck:
    return DocumentTotalsCheck("acme/progressed", database, "acme", write_pack(tmp_path)[1], {})


def events_check(tmp_path: Path, database: TargetDatabase, now: float) -> DocumentEventsCheck:
    query = write_pack(tmp_path)[0]
    return DocumentEventsCheck("acme/created", database, "acme", query, {}, clock=lambda: now, max_rows=2)


def test_totals_count_their_growth_and_start_at_zero(tmp_path: Path, erp_file: Path, database: TargetDatabase) -> None:
    execute(erp_file, "INSERT INTO states VALUES (?, ?)", *[("order", "confirmed")] * 5)
    check = totals_check(tmp_path, database)
    assert counted(check) == {("order", "confirmed"): 0, ("invoice", "posted"): 0}
    execute(erp_file, "INSERT INTO states VALUES (?, ?)", ("order", "confirmed"), ("order", "confirmed"))
    assert counted(check) == {("order", "confirmed"): 2, ("invoice", "posted"): 0}
    assert counted(check) == {("order", "confirmed"): 2, ("invoice", "posted"): 0}


def test_a_pair_with_no_row_at_priming_counts_its_first_documents(
    tmp_path: Path, erp_file: Path, database: TargetDatabase
) -> None:
    check = totals_check(tmp_path, database)
    counted(check)  # no invoice posted yet: the query returns no row for it
    execute(erp_file, "INSERT INTO states VALUES (?, ?)", ("invoice", "posted"), ("invoice", "posted"))
    assert counted(check)[("invoice", "posted")] == 2


def test_a_shrinking_total_lowers_the_baseline_and_the_counter_never_goes_down(
    tmp_path: Path, erp_file: Path, database: TargetDatabase
) -> None:
    execute(erp_file, "INSERT INTO states VALUES (?, ?)", *[("order", "confirmed")] * 3)
    check = totals_check(tmp_path, database)
    counted(check)
    execute(erp_file, "INSERT INTO states VALUES (?, ?)", ("order", "confirmed"))
    assert counted(check)[("order", "confirmed")] == 1
    execute(erp_file, "DELETE FROM states WHERE rowid IN (SELECT rowid FROM states LIMIT 2)")
    assert counted(check)[("order", "confirmed")] == 1
    execute(erp_file, "INSERT INTO states VALUES (?, ?)", ("order", "confirmed"))
    assert counted(check)[("order", "confirmed")] == 2


def test_a_row_with_an_undeclared_pair_fails_the_check_naming_it(
    tmp_path: Path, erp_file: Path, database: TargetDatabase
) -> None:
    execute(erp_file, "INSERT INTO states VALUES (?, ?)", ("order", "shipped"))
    with pytest.raises(CheckError) as excinfo:
        counted(totals_check(tmp_path, database))
    assert excinfo.value.reason is ErrorReason.QUERY
    assert excinfo.value.message == (
        "pack 'acme' query 'progressed' returned document 'order' event 'shipped', which its `documents` do not "
        "declare (declared: invoice/posted, order/confirmed)"
    )


def test_events_are_counted_once_across_rounds_cut_at_the_row_limit(
    tmp_path: Path, erp_file: Path, database: TargetDatabase
) -> None:
    now = 10_000.0
    execute(erp_file, "INSERT INTO orders VALUES (?, ?)", (1, now - 7200), (2, now - 60))
    check = events_check(tmp_path, database, now)
    assert counted(check) == {("order", "created"): 0}  # priming: the last hour is seen, not counted
    execute(erp_file, "INSERT INTO orders VALUES (?, ?)", (3, now - 30), (4, now - 30), (5, now - 30), (6, now))
    assert counted(check) == {("order", "created"): 1}  # two rows per round: 2 (seen) and 3
    # 3 (seen) and 4: a full round whose stamps did not move past the watermark's, so the next reads twice
    # as many; otherwise more rows than a round holds at one stamp would never be read
    assert counted(check) == {("order", "created"): 2}
    assert counted(check) == {("order", "created"): 4}  # 3, 4 (seen), 5 and 6
    assert counted(check) == {("order", "created"): 4}


def test_a_failed_round_counts_nothing_and_the_next_one_counts_it_all(
    tmp_path: Path, erp_file: Path, database: TargetDatabase
) -> None:
    check = totals_check(tmp_path, database)
    counted(check)
    execute(erp_file, "INSERT INTO states VALUES (?, ?)", ("order", "confirmed"), ("order", "shipped"))
    with pytest.raises(CheckError):
        counted(check)
    execute(erp_file, "DELETE FROM states WHERE event = 'shipped'")
    assert counted(check)[("order", "confirmed")] == 1


def test_a_document_query_must_declare_its_documents_and_return_its_columns(tmp_path: Path) -> None:
    text = PACK.replace("    documents:\n      order: [created]\n", "").replace(
        "columns: [document, event, total]", "columns: [document, total]"
    )
    with pytest.raises(PackError) as excinfo:
        write_pack(tmp_path, text)
    assert str(excinfo.value).splitlines() == [
        "acme.yml:5: queries[0].documents: a document_events query names the documents and events it returns",
        "acme.yml:14: queries[1].columns: a document_totals query returns document, event, total; missing: event",
    ]


def test_a_document_events_query_must_select_since_the_watermark(tmp_path: Path) -> None:
    with pytest.raises(PackError) as excinfo:
        write_pack(tmp_path, PACK.replace(" WHERE created >= :since", ""))
    assert str(excinfo.value).splitlines() == [
        "acme.yml:11: queries[0].sql.sqlite: a document_events query must select the events since the watermark: "
        "use :since"
    ]


def test_only_document_queries_have_documents(tmp_path: Path) -> None:
    text = PACK.replace("kind: document_totals", "kind: metrics")
    with pytest.raises(PackError) as excinfo:
        write_pack(tmp_path, text)
    assert "queries[1].documents: only a document_events or document_totals query has this key" in str(excinfo.value)


def test_more_rows_at_one_stamp_than_a_round_may_grow_to_fail_the_check_clearly(
    tmp_path: Path, erp_file: Path, database: TargetDatabase
) -> None:
    now = 10_000.0
    query = write_pack(tmp_path)[0]
    check = DocumentEventsCheck("acme/created", database, "acme", query, {}, clock=lambda: now, max_rows=1)
    counted(check)
    execute(erp_file, "INSERT INTO orders VALUES (?, ?)", *[(i, now - 10) for i in range(1, 21)])
    with pytest.raises(CheckError) as excinfo:
        for _ in range(10):
            counted(check)
    assert excinfo.value.message == (
        "pack 'acme' query 'created' returned more than 16 rows with the same occurred_at: the watermark cannot "
        "move on"
    )
