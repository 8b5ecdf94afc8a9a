"""The zero-write audit itself (tests/statement_audit.py): it reads real log formats, finds a planted write
of a monitoring login, and lets session setup, other logins and named deliberate writes through."""

from __future__ import annotations

from statement_audit import Statement, audit, deliberate, parse_mariadb_general_log, parse_postgres_log, writes

PG_LOG = """\
2026-12-07 09:11:32.435 UTC [20499] user=exporter db=appdb app=[unknown] LOG:  statement: SET DateStyle = \
'ISO';SET extra_float_digits = 2;show transaction_isolation
2026-12-07 09:11:32.441 UTC [20499] user=exporter db=appdb app=[unknown] LOG:  statement: SELECT \
set_config('default_transaction_read_only', 'on', false), set_config('application_name', 'erp-exporter', false) \
IS NOT NULL, current_setting('server_version')
2026-12-07 09:11:32.460 UTC [20499] user=exporter db=appdb app=erp-exporter LOG:  statement: SET \
statement_timeout = 10000
2026-12-07 09:11:32.471 UTC [20499] user=exporter db=appdb app=erp-exporter LOG:  statement: \x20
SELECT count(*)
  FROM pg_stat_activity
 WHERE state = 'idle in transaction'
2026-12-07 09:11:33.001 UTC [20510] user=postgres db=appdb app=psql LOG:  statement: CREATE TABLE fixture (id int);
2026-12-07 09:11:33.101 UTC [20499] user=exporter db=appdb app=erp-exporter LOG:  execute <unnamed>: WITH gone AS (
  DELETE FROM orders RETURNING id) SELECT count(*) FROM gone
2026-12-07 09:11:33.102 UTC [20499] user=exporter db=appdb app=erp-exporter ERROR:  cannot execute DELETE in a \
read-only transaction
"""

MARIADB_LOG = """\
/usr/sbin/mariadbd, Version: 10.11.19-MariaDB-0+deb12u1-log (Debian 12). started with:
Tcp port: 50121  Unix socket: /tmp/x/mysqld.sock
Time\t\t    Id Command\tArgument
261207  9:11:31\t     4 Connect\troot@localhost on  using Socket
\t\t     4 Query\tGRANT ALL ON appdb.* TO 'exporter'@'127.0.0.1'
261207  9:11:32\t     5 Connect\texporter@127.0.0.1 on appdb using TCP/IP
\t\t     5 Query\tSET autocommit=1
\t\t     5 Query\tSET SESSION TRANSACTION READ ONLY
\t\t     5 Query\tSET SESSION max_statement_time = 10
\t\t     5 Prepare\tSELECT
  COALESCE(SUM(1), 0) AS active
FROM information_schema.PROCESSLIST
\t\t     5 Execute\tSELECT 1
\t\t     5 Query\tSET SESSION TRANSACTION READ WRITE
\t\t     5 Quit\t
/usr/sbin/mariadbd, Version: 10.11.19-MariaDB-0+deb12u1-log (Debian 12). started with:
Tcp port: 50121  Unix socket: /tmp/x/mysqld.sock
Time\t\t    Id Command\tArgument
261207  9:12:00\t     5 Connect\troot@localhost on  using Socket
\t\t     5 Query\tDROP TABLE appdb.fixture
"""


def test_a_postgresql_log_gives_every_statement_with_its_user_and_lines_joined() -> None:
    statements = list(parse_postgres_log(PG_LOG))
    assert [s.user for s in statements] == ["exporter"] * 4 + ["postgres", "exporter"]
    assert statements[3].sql == "SELECT count(*)\n  FROM pg_stat_activity\n WHERE state = 'idle in transaction'"


def test_a_write_planted_in_a_postgresql_log_is_found_and_session_setup_is_not() -> None:
    result = audit(parse_postgres_log(PG_LOG))
    assert result.audited == 5  # the superuser's CREATE TABLE is fixture data, not the monitor's
    assert [s.sql.split("(")[0] for s in result.violations] == ["WITH gone AS "]


def test_a_mariadb_general_log_gives_each_connections_user_across_a_restart() -> None:
    statements = list(parse_mariadb_general_log(MARIADB_LOG))
    assert [(s.user, s.sql.split()[0]) for s in statements] == [
        ("root", "GRANT"), ("exporter", "SET"), ("exporter", "SET"), ("exporter", "SET"), ("exporter", "SELECT"),
        ("exporter", "SELECT"), ("exporter", "SET"), ("root", "DROP"),  # id 5 is root's after the restart
    ]


def test_a_set_planted_in_a_mariadb_log_is_found() -> None:
    result = audit(parse_mariadb_general_log(MARIADB_LOG))
    assert result.audited == 6
    assert [s.sql for s in result.violations] == ["SET SESSION TRANSACTION READ WRITE"]


def test_a_write_a_test_names_as_deliberate_is_counted_apart() -> None:
    log = MARIADB_LOG.replace("SET SESSION TRANSACTION READ WRITE", "INSERT INTO audit_probe VALUES (42)")
    deliberate("INSERT INTO audit_probe VALUES (42)")
    result = audit(parse_mariadb_general_log(log))
    assert (len(result.deliberate), result.violations) == (1, [])


def test_write_words_in_literals_and_comments_are_not_writes_but_locking_and_state_changing_queries_are() -> None:
    assert not writes("SELECT 'DELETE FROM t' AS s -- DROP TABLE t")
    assert not writes("SELECT has_table_privilege('t', 'INSERT, UPDATE')")
    assert not writes("SHOW GRANTS")
    for sql in ("SELECT * FROM t FOR UPDATE", "SELECT nextval('s')", "SELECT * INTO x FROM t", "DO $$ $$",
                "LOCK TABLE t", "set search_path = public", "(DELETE FROM t)"):
        assert writes(sql), sql


def test_psqlodbc_transaction_control_sent_with_a_query_is_not_a_write_but_a_write_after_it_is() -> None:
    assert audit_sql("BEGIN;SELECT id FROM orders") == []
    assert audit_sql("SAVEPOINT _EXEC_SVP_0x564c64591390;SELECT sum(amount) FROM t") == []
    assert audit_sql('DEALLOCATE "_PLAN0x564c64539f40"') == []
    assert audit_sql("SELECT 'a;b'; DELETE FROM t") == ["SELECT 'a;b'; DELETE FROM t"]
    assert audit_sql("BEGIN READ WRITE;SELECT 1") == ["BEGIN READ WRITE;SELECT 1"]


def audit_sql(sql: str) -> list[str]:
    """The violations the audit finds in one statement of the monitoring login."""
    return [s.sql for s in audit([Statement("postgresql", "exporter", sql)]).violations]
