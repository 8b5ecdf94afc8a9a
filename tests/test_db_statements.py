"""db_statements: the top statements by total time, read from real servers' own statistics and checked
against the same statistics read directly (psql, the mariadb client); clear errors where there are none."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import odbc_database
from servers import EXPORTER_PASSWORD, EXPORTER_USER, MariaDBServer, PostgresServer

from exporter.checks.base import CheckError, RunContext
from exporter.checks.db_statements import DbStatementsCheck, Statement, normalized_text, statements_to_families
from exporter.metrics import MetricFamily, Sample

APP_QUERY = "SELECT count(*) FROM orders WHERE amount > 10"


def run(check: DbStatementsCheck) -> dict[str, list[Sample]]:
    families: list[MetricFamily] = check.run(RunContext(timeout=20))
    return {family.name: family.samples for family in families}


def by_query(samples: dict[str, list[Sample]], fragment: str) -> str:
    """The queryid of the one info series whose text contains `fragment`."""
    found = [s.labels["queryid"] for s in samples["erp_database_statement_info"] if fragment in s.labels["query"]]
    assert len(found) == 1, samples["erp_database_statement_info"]
    return found[0]


def value(samples: dict[str, list[Sample]], name: str, queryid: str) -> float:
    found = [s.value for s in samples[name] if s.labels == {"queryid": queryid}]
    assert len(found) == 1 and isinstance(found[0], float), samples[name]
    return found[0]


# -- pure conversion ------------------------------------------------------------------------------------------


def test_a_label_never_shows_a_quoted_literal() -> None:
    text = normalized_text("ALTER ROLE app PASSWORD 'S3cret!'  ,\n  'it''s'", 200)
    assert "S3cret" not in text and "it''s" not in text
    assert text == "ALTER ROLE app PASSWORD '?' , '?'"


def test_a_long_statement_is_cut_to_the_configured_length() -> None:
    text = normalized_text("SELECT " + ", ".join(f"column_{i}" for i in range(100)) + " FROM t", 40)
    assert len(text) == 40 and text.endswith("…")


def test_the_mean_is_time_over_calls_and_absent_without_calls() -> None:
    statements = [Statement("1", "SELECT 1", 4, 2.0, 4), Statement("2", "SELECT 2", 0, 0.0, 0)]
    mean = next(f for f in statements_to_families(statements, 2, 80) if f.name == "erp_database_statement_mean_seconds")
    assert [(s.labels["queryid"], s.skip_reason) for s in mean.samples] == [("1", None), ("2", "null")]
    assert mean.samples[0].value == 0.5


# -- PostgreSQL with pg_stat_statements ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def statements_postgres(_servers_root: Path) -> Iterator[PostgresServer]:
    """A private PostgreSQL that loads pg_stat_statements (it must be preloaded at start; ~2 s)."""
    server = PostgresServer(
        _servers_root / f"pg-statements-{uuid.uuid4().hex[:8]}",
        settings={"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "all"},
    )
    server.start()
    server.psql(
        "CREATE EXTENSION pg_stat_statements;\n"
        f"GRANT pg_read_all_stats TO {EXPORTER_USER};\n"
        "CREATE TABLE orders (id int, amount int);\n"
        "INSERT INTO orders SELECT i, i % 50 FROM generate_series(1, 5000) i;\n"
        f"GRANT SELECT ON orders TO {EXPORTER_USER};\n"
        "SELECT pg_stat_statements_reset();\n"
    )
    try:
        yield server
    finally:
        server.stop()


def pg_check(server: PostgresServer, top: int = 20) -> DbStatementsCheck:
    attributes = {"server": server.host, "port": str(server.port), "database": "appdb"}
    database = odbc_database("PostgreSQL Unicode", attributes, EXPORTER_USER, EXPORTER_PASSWORD)
    return DbStatementsCheck("statements", database, top=top)


def test_postgresql_statements_match_pg_stat_statements_read_directly(statements_postgres: PostgresServer) -> None:
    statements_postgres.psql(f"{APP_QUERY};\n" * 7)
    check = pg_check(statements_postgres)

    samples = run(check)

    queryid = by_query(samples, "FROM orders WHERE amount > $1")
    direct = statements_postgres.psql(
        "SELECT calls, rows, total_exec_time / 1000.0 FROM pg_stat_statements WHERE queryid = " + queryid
    ).strip().split("|")
    assert value(samples, "erp_database_statement_calls_total", queryid) == float(direct[0]) == 7
    assert value(samples, "erp_database_statement_rows_total", queryid) == float(direct[1]) == 7
    assert value(samples, "erp_database_statement_seconds_total", queryid) == pytest.approx(float(direct[2]))


def test_postgresql_leaves_out_the_exporters_own_statements_and_utility_statements(
    statements_postgres: PostgresServer,
) -> None:
    statements_postgres.psql("ALTER ROLE exporter PASSWORD 'exporterpw';\n")  # a utility statement with a secret
    check = pg_check(statements_postgres)
    run(check)  # the exporter's own statements now exist in the statistics

    samples = run(check)

    texts = [s.labels["query"] for s in samples["erp_database_statement_info"]]
    assert texts and not any("pg_stat_statements s" in text for text in texts)
    assert not any("ALTER ROLE" in text or "exporterpw" in text for text in texts)


def test_postgresql_series_are_bounded_by_top(statements_postgres: PostgresServer) -> None:
    statements_postgres.psql("".join(f"SELECT {i} AS n_{i} FROM orders LIMIT 1;\n" for i in range(8)))

    samples = run(pg_check(statements_postgres, top=3))

    assert len(samples["erp_database_statement_calls_total"]) == 3
    assert samples["erp_database_statements_tracked"][0].value > 3


def test_postgresql_without_the_extension_says_how_to_install_it(postgres: PostgresServer) -> None:
    with pytest.raises(CheckError, match="pg_stat_statements is not installed in this database"):
        run(pg_check(postgres))


def test_postgresql_with_the_extension_but_not_the_library_says_to_preload_it(postgres: PostgresServer) -> None:
    name = f"nopreload_{uuid.uuid4().hex[:8]}"
    postgres.psql(f"CREATE DATABASE {name};\n", database="postgres")
    postgres.psql("CREATE EXTENSION pg_stat_statements;\n", database=name)
    attributes = {"server": postgres.host, "port": str(postgres.port), "database": name}
    database = odbc_database("PostgreSQL Unicode", attributes, EXPORTER_USER, EXPORTER_PASSWORD)
    with pytest.raises(CheckError, match="add it to shared_preload_libraries"):
        run(DbStatementsCheck("statements", database))


# -- MariaDB with performance_schema, and the rest ------------------------------------------------------------


class PerformanceSchemaMariaDB(MariaDBServer):
    """A private MariaDB with performance_schema on (it cannot be switched on at runtime)."""

    def _user_option(self) -> list[str]:
        return [*super()._user_option(), "--performance-schema=ON"]


def mariadb_check(server: MariaDBServer) -> DbStatementsCheck:
    attributes = {"server": server.host, "port": str(server.port), "database": "appdb"}
    database = odbc_database("MariaDB Unicode", attributes, EXPORTER_USER, EXPORTER_PASSWORD)
    return DbStatementsCheck("statements", database)


def test_mariadb_statements_match_the_digest_summary_read_directly(_servers_root: Path) -> None:
    server = PerformanceSchemaMariaDB(_servers_root / f"mariadb-statements-{uuid.uuid4().hex[:8]}")
    server.start()
    try:
        server.sql(
            "GRANT SELECT ON performance_schema.* TO 'exporter'@'127.0.0.1';"
            "USE appdb; CREATE TABLE orders (id INT, amount INT);"
            "INSERT INTO orders SELECT seq, seq % 50 FROM seq_1_to_5000;"
            + f"{APP_QUERY};" * 5
        )

        samples = run(mariadb_check(server))

        digest = by_query(samples, "FROM `orders` WHERE `amount` > ?")
        calls = server.sql(
            "SELECT COUNT_STAR FROM performance_schema.events_statements_summary_by_digest "
            f"WHERE DIGEST = '{digest}'"
        ).strip()
        assert value(samples, "erp_database_statement_calls_total", digest) == float(calls) == 5
    finally:
        server.stop()


def test_mariadb_without_performance_schema_says_so(mariadb: MariaDBServer) -> None:
    with pytest.raises(CheckError, match="performance_schema is off"):
        run(mariadb_check(mariadb))


def test_sqlite_has_no_statement_history_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "erp.db"
    sqlite3.connect(path).close()
    check = DbStatementsCheck("statements", odbc_database("SQLite3", {"database": str(path)}))
    with pytest.raises(CheckError, match="needs PostgreSQL"):
        run(check)
