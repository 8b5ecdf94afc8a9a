"""The read-only guard: one read-only query passes; anything else, or anything hidden from it, is refused.

Where a case depends on lexical rules, the dialect is given; None means "every lexical mode".
"""

from __future__ import annotations

import pytest

from exporter.db.dialect import Dialect
from exporter.db.guard import GuardError, check_read_only

PG = Dialect.POSTGRESQL
MYSQL = Dialect.MYSQL
SQLITE = Dialect.SQLITE
MSSQL = Dialect.MSSQL


def refusal(sql: str, dialect: Dialect | None = None) -> str:
    """The refusal message for `sql`; fails the test when the guard lets it through."""
    with pytest.raises(GuardError) as info:
        check_read_only(sql, dialect)
    return str(info.value)


# --- what passes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT 1", id="select"),
        pytest.param("select 1;", id="single-trailing-semicolon"),
        pytest.param("SELECT 1; -- done\n/* really */  ", id="trailing-semicolon-then-comments"),
        pytest.param("  (SELECT 1) UNION (SELECT 2)", id="opening-parenthesis"),
        pytest.param("((VALUES (1)))", id="several-opening-parentheses"),
        pytest.param("-- why\n/* what */ SELECT 1", id="leading-comments"),
        pytest.param("VALUES (1), (2)", id="values"),
        pytest.param("SHOW max_connections", id="show"),
        pytest.param("EXPLAIN SELECT * FROM t", id="explain-without-analyze"),
        pytest.param(
            "WITH RECURSIVE r(n) AS (VALUES (1) UNION ALL SELECT n+1 FROM r WHERE n < 3) SELECT * FROM r",
            id="recursive-cte",
        ),
        pytest.param(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'", id="monitoring-query"
        ),
        pytest.param("SELECT replace(name, 'a', 'b') FROM t", id="replace-function"),
        pytest.param("SELECT 0xDEADBEEF, 1e5, 1.5e-3, .5 FROM t", id="numbers"),
        pytest.param(
            "SELECT 'größe\u00a0m²', straße FROM tabelle -- kommentar\r\n", id="unicode-text-and-crlf"
        ),
    ],
)
def test_allows_a_single_read_only_query(sql: str) -> None:
    check_read_only(sql)


@pytest.mark.parametrize("dialect", [None, PG, MYSQL, SQLITE, MSSQL], ids=lambda d: d or "every-mode")
def test_allows_keywords_inside_string_literals(dialect: Dialect | None) -> None:
    check_read_only("SELECT 'DELETE FROM t; DROP TABLE x' AS s", dialect)


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT 1 /* DELETE */", id="block-comment"),
        pytest.param("SELECT 1 -- ; DROP TABLE t", id="line-comment"),
        pytest.param("SELECT 1 /* ; DROP TABLE t; */ FROM t", id="semicolon-in-comment"),
    ],
)
def test_allows_keywords_inside_comments(sql: str) -> None:
    check_read_only(sql)


@pytest.mark.parametrize(
    ("sql", "dialect"),
    [
        pytest.param('SELECT "delete" FROM t', PG, id="postgresql-double-quotes"),
        pytest.param('SELECT "delete" FROM t', SQLITE, id="sqlite-double-quotes"),
        pytest.param('SELECT "delete" FROM t', None, id="every-mode-double-quotes"),
        pytest.param("SELECT `update` FROM t", MYSQL, id="mysql-backticks"),
        pytest.param("SELECT [delete] FROM t", MSSQL, id="mssql-brackets"),
        pytest.param("SELECT [delete]]x] FROM t", MSSQL, id="mssql-brackets-with-escape"),
        pytest.param("SELECT [delete] FROM t", SQLITE, id="sqlite-brackets"),
    ],
)
def test_allows_keywords_as_quoted_identifiers(sql: str, dialect: Dialect | None) -> None:
    check_read_only(sql, dialect)


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT updated_at, deleted, insert_time, created FROM t", id="dml-prefixes"),
        pytest.param(
            "SELECT n_tup_upd, tup_inserted, last_vacuum, calls FROM pg_stat_user_tables", id="pg-stats"
        ),
        pytest.param("SELECT * FROM pg_stat_progress_copy, pg_locks", id="catalog-names"),
        pytest.param("SELECT comment, lock_timeout, into_account FROM t", id="comment-and-compounds"),
    ],
)
def test_allows_forbidden_words_inside_longer_names(sql: str) -> None:
    check_read_only(sql)


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT $$it's; DELETE$$", id="dollar-quote"),
        pytest.param("SELECT $fn$ DROP TABLE t; $f$ $fn$", id="tagged-dollar-quote"),
        pytest.param("SELECT E'a\\'; DELETE'", id="escape-string"),
        pytest.param("SELECT $1::int, a$b FROM t", id="parameter-and-dollar-in-name"),
        pytest.param("/* /* */ DELETE FROM t; */ SELECT 1", id="nested-comment"),
    ],
)
def test_allows_postgresql_lexical_forms(sql: str) -> None:
    check_read_only(sql, PG)


def test_mssql_comments_nest_too() -> None:
    check_read_only("/* /* */ DELETE FROM t; */ SELECT 1", MSSQL)


# --- statement shape -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("", id="empty"),
        pytest.param("  \n\t ", id="whitespace"),
        pytest.param("-- only a comment", id="line-comment"),
        pytest.param("/* only a comment */", id="block-comment"),
        pytest.param(";", id="lone-semicolon"),
    ],
)
def test_refuses_empty_statement(sql: str) -> None:
    assert "empty statement" in refusal(sql)


@pytest.mark.parametrize(
    ("sql", "keyword"),
    [
        pytest.param("INSERT INTO t VALUES (1)", "INSERT", id="insert"),
        pytest.param("update t set a = 1", "UPDATE", id="update-lowercase"),
        pytest.param("/* c */ DELETE FROM t", "DELETE", id="delete-after-comment"),
        pytest.param("(DELETE FROM t)", "DELETE", id="delete-in-parentheses"),
        pytest.param("MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", "MERGE", id="merge"),
        pytest.param("TRUNCATE t", "TRUNCATE", id="truncate"),
        pytest.param("COPY t TO '/tmp/x'", "COPY", id="copy"),
        pytest.param("CALL p()", "CALL", id="call"),
        pytest.param("EXEC sp_who", "EXEC", id="exec"),
        pytest.param("DO $$BEGIN END$$", "DO", id="do"),
        pytest.param("SET SESSION TRANSACTION READ WRITE", "SET", id="set-read-write"),
        pytest.param("BEGIN READ WRITE", "BEGIN", id="begin-read-write"),
        pytest.param("COMMIT", "COMMIT", id="commit"),
        pytest.param("VACUUM", "VACUUM", id="vacuum"),
        pytest.param("ANALYZE t", "ANALYZE", id="analyze"),
        pytest.param("PRAGMA query_only=0", "PRAGMA", id="pragma"),
        pytest.param("ATTACH DATABASE 'x.db' AS x", "ATTACH", id="attach"),
        pytest.param("LOAD DATA INFILE 'x' INTO TABLE t", "LOAD", id="load"),
        pytest.param("HANDLER t OPEN", "HANDLER", id="handler"),
        pytest.param("REPLACE INTO t VALUES (1)", "REPLACE", id="replace"),
        pytest.param("TABLE t", "TABLE", id="table-shorthand"),
    ],
)
def test_refuses_statements_that_are_not_queries(sql: str, keyword: str) -> None:
    message = refusal(sql)
    assert f"statement starts with '{keyword}'" in message
    assert "only SELECT, WITH, VALUES, SHOW or EXPLAIN are allowed" in message


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("'DELETE'", id="string-literal"),
        pytest.param("1", id="number"),
        pytest.param("((", id="only-parentheses"),
        pytest.param("{call p()}", id="odbc-call-escape"),
    ],
)
def test_refuses_statements_that_do_not_start_with_a_keyword(sql: str) -> None:
    assert "does not start with SELECT" in refusal(sql)


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT 1; DELETE FROM t", id="second-statement"),
        pytest.param("select 1;delete from t;", id="no-spaces"),
        pytest.param("SELECT 1 -- x\n; DROP TABLE t", id="semicolon-after-line-comment"),
        pytest.param("SELECT 1; SELECT 2", id="two-queries"),
        pytest.param("SELECT 1;;", id="double-semicolon"),
        pytest.param(";SELECT 1", id="leading-semicolon"),
    ],
)
def test_refuses_several_statements(sql: str) -> None:
    assert refusal(sql) == "refused: several statements (only one query is allowed)"


# --- what a query must not do ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "keyword"),
    [
        pytest.param("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", "DELETE", id="delete"),
        pytest.param(
            "WiTh x AS (uPdAtE t SET a=1 RETURNING a) SELECT a FROM x", "UPDATE", id="mixed-case-update"
        ),
        pytest.param("WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT 1", "INSERT", id="insert"),
    ],
)
def test_refuses_data_modifying_cte(sql: str, keyword: str) -> None:
    assert f"'{keyword}' is not allowed in a read-only query" in refusal(sql)


@pytest.mark.parametrize(
    "word",
    [
        "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "TRUNCATE", "DROP", "ALTER", "CREATE", "GRANT",
        "REVOKE", "INTO", "LOCK", "COPY", "CALL", "EXEC", "EXECUTE", "ATTACH", "DETACH", "PRAGMA", "VACUUM",
        "REINDEX", "CLUSTER", "REFRESH",
    ],
)  # fmt: skip
def test_refuses_forbidden_words_anywhere_in_the_code(word: str) -> None:
    sql = f"SELECT a FROM t WHERE {word.lower()} IS NULL"
    assert refusal(sql) == f"refused: '{word}' is not allowed in a read-only query"


@pytest.mark.parametrize(
    ("sql", "dialect"),
    [
        pytest.param("SELECT * INTO new_t FROM t", None, id="select-into"),
        pytest.param("SELECT * FROM t INTO OUTFILE '/tmp/x'", MYSQL, id="into-outfile"),
        pytest.param("SELECT 1INTO new_t FROM t", PG, id="glued-to-a-number"),
        pytest.param("SELECT 0x0INTO new_t FROM t", MSSQL, id="glued-to-a-hex-number"),
        pytest.param("SELECT a$into FROM t", None, id="after-a-dollar"),
        pytest.param("SELECT * \uff49\uff4e\uff54\uff4f new_t FROM t", None, id="fullwidth-letters"),
    ],
)
def test_refuses_select_into_however_it_is_spelled(sql: str, dialect: Dialect | None) -> None:
    assert "'INTO' is not allowed" in refusal(sql, dialect)


@pytest.mark.parametrize(
    ("sql", "clause"),
    [
        pytest.param("SELECT * FROM t FOR UPDATE", "FOR UPDATE", id="for-update"),
        pytest.param("SELECT * FROM t FOR SHARE", "FOR SHARE", id="for-share"),
        pytest.param("SELECT * FROM t FOR NO KEY UPDATE", "FOR NO KEY UPDATE", id="for-no-key-update"),
        pytest.param("SELECT * FROM t FOR KEY SHARE SKIP LOCKED", "FOR KEY SHARE", id="for-key-share"),
        pytest.param("SELECT * FROM t for /* x */ update", "FOR UPDATE", id="comment-between"),
        pytest.param(
            "SELECT * FROM t LOCK IN SHARE MODE", "LOCK IN SHARE MODE", id="mysql-lock-in-share-mode"
        ),
        pytest.param("SELECT * FROM t WITH (UPDLOCK, ROWLOCK)", "UPDLOCK", id="mssql-updlock"),
        pytest.param("SELECT * FROM t WITH (HOLDLOCK)", "HOLDLOCK", id="mssql-holdlock"),
        pytest.param(
            "SELECT * FROM t WITH RS USE AND KEEP EXCLUSIVE LOCKS", "KEEP EXCLUSIVE LOCKS", id="db2"
        ),
    ],
)
def test_refuses_row_locks(sql: str, clause: str) -> None:
    assert refusal(sql) == f"refused: '{clause}' takes locks in a read-only query"


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("EXPLAIN ANALYZE DELETE FROM t", id="explain-analyze"),
        pytest.param("explain analyse select 1", id="british-spelling"),
        pytest.param("EXPLAIN (ANALYZE) SELECT 1", id="option"),
        pytest.param("EXPLAIN (ANALYZE true) SELECT 1", id="option-with-value"),
        pytest.param("EXPLAIN (FORMAT JSON, ANALYZE) SELECT 1", id="second-option"),
        pytest.param('EXPLAIN ("analyze") SELECT 1', id="quoted-option"),
    ],
)
def test_refuses_explain_analyze(sql: str) -> None:
    assert refusal(sql) == "refused: EXPLAIN ANALYZE executes the statement"


@pytest.mark.parametrize(
    ("sql", "function"),
    [
        pytest.param(
            "SELECT set_config('default_transaction_read_only','off',false)", "set_config", id="set-config"
        ),
        pytest.param("SELECT nextval('s')", "nextval", id="nextval"),
        pytest.param("SELECT pg_catalog.SETVAL ('s', 1)", "setval", id="qualified-upper-case"),
        pytest.param(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity", "pg_terminate_backend", id="terminate"
        ),
        pytest.param(
            "SELECT pg_advisory_lock_shared(1)", "pg_advisory_lock_shared", id="advisory-lock-variant"
        ),
        pytest.param("SELECT lo_import('/etc/passwd')", "lo_import", id="large-object"),
        pytest.param("SELECT dblink_exec('dbname=x', 'DELETE FROM t')", "dblink_exec", id="dblink"),
        pytest.param(
            "SELECT query_to_xml('select nextval(''s'')', true, true, '')", "query_to_xml", id="sql-in-string"
        ),
        pytest.param("SELECT pg_stat_reset()", "pg_stat_reset", id="statistics-reset"),
        pytest.param("SELECT GET_LOCK('x', 10)", "get_lock", id="mysql-named-lock"),
        pytest.param("SELECT load_extension('x.so')", "load_extension", id="sqlite-extension"),
        pytest.param("SELECT \"nextval\"('s')", "nextval", id="quoted-name"),
        pytest.param(
            "SELECT pg_catalog.\"set_config\"('a', 'b', false)", "set_config", id="quoted-qualified"
        ),
    ],
)
def test_refuses_functions_with_side_effects(sql: str, function: str) -> None:
    assert refusal(sql) == f"refused: function '{function}' has side effects"


def test_refuses_side_effect_function_in_mysql_backticks() -> None:
    assert "function 'get_lock' has side effects" in refusal("SELECT `get_lock`('x', 10)", MYSQL)


def test_refuses_unicode_escaped_identifiers_it_cannot_read() -> None:
    assert 'Unicode-escaped identifier U&"..."' in refusal(
        "SELECT U&\"\\0073et_config\"('a', 'b', false)", PG
    )


# --- lexical tricks: a literal or comment the guard misreads must not hide code ---------------------------


@pytest.mark.parametrize("dialect", [MYSQL, None], ids=["mysql", "every-mode"])
def test_mysql_backslash_escape_cannot_hide_a_second_statement(dialect: Dialect | None) -> None:
    # The backslash escapes the first closing quote, so the string ends at ', ' and the DELETE is code.
    assert "several statements" in refusal("SELECT 'x\\' , ' ; DELETE FROM t; -- '", dialect)


@pytest.mark.parametrize("dialect", [MYSQL, None], ids=["mysql", "every-mode"])
@pytest.mark.parametrize("marker", ["/*!", "/*!50000", "/*M!"], ids=["plain", "versioned", "mariadb"])
def test_mysql_executable_comment_is_refused(marker: str, dialect: Dialect | None) -> None:
    assert "executable comment" in refusal(f"SELECT 1 {marker} ; DELETE FROM t */", dialect)


@pytest.mark.parametrize("dialect", [MYSQL, SQLITE, None], ids=["mysql", "sqlite", "every-mode"])
def test_nested_comment_trick_is_refused_where_comments_do_not_nest(dialect: Dialect | None) -> None:
    # PostgreSQL reads one comment; MySQL and SQLite end it at the first */ and run the DELETE.
    assert "refused" in refusal("/* /* */ DELETE FROM t; */ SELECT 1", dialect)


@pytest.mark.parametrize("dialect", [MYSQL, None], ids=["mysql", "every-mode"])
def test_dollar_quote_cannot_hide_code_from_servers_without_dollar_quoting(dialect: Dialect | None) -> None:
    assert "several statements" in refusal("SELECT $a$ ; DELETE FROM t; $a$", dialect)


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT 1 --x\n; DELETE FROM t", id="next-line"),
        pytest.param("SELECT 1 --x; DELETE FROM t", id="same-line"),
        pytest.param("SELECT 1--1; DELETE FROM t", id="arithmetic"),
    ],
)
def test_mysql_double_dash_without_a_space_is_not_a_comment(sql: str) -> None:
    assert "several statements" in refusal(sql, MYSQL)


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT 1--1", id="arithmetic"),
        pytest.param("SELECT 1 -- ; DROP TABLE t", id="space"),
        pytest.param("SELECT 1 --\t; DROP TABLE t", id="tab"),
        pytest.param("SELECT 1 --", id="end-of-input"),
        pytest.param("SELECT 1 # ; DROP TABLE t", id="hash-comment"),
    ],
)
def test_mysql_comments_are_understood(sql: str) -> None:
    check_read_only(sql, MYSQL)


def test_hash_is_not_a_comment_outside_mysql() -> None:
    assert "several statements" in refusal("SELECT 1 # ; DROP TABLE t", PG)


@pytest.mark.parametrize(
    ("sql", "dialect", "mode"),
    [
        pytest.param(
            "SELECT 'a\\'' ; DELETE FROM t; -- '",
            PG,
            "standard_conforming_strings=off",
            id="pg-backslash-strings",
        ),
        pytest.param(
            "SELECT 'a\\' ; DELETE FROM t; -- '", MYSQL, "NO_BACKSLASH_ESCAPES", id="mysql-no-backslash"
        ),
        pytest.param('SELECT "a\\" ; DELETE FROM t; -- "', MYSQL, "ANSI_QUOTES", id="mysql-ansi-quotes"),
    ],
)
def test_server_settings_that_change_quoting_cannot_hide_code(sql: str, dialect: Dialect, mode: str) -> None:
    message = refusal(sql, dialect)
    assert "several statements" in message
    assert mode in message


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT 1$b$ $a$ $b$; DELETE FROM t; --$a$", id="number-then-dollar-quote"),
        pytest.param("SELECT 1e'a\\'' ; DELETE FROM t; --'", id="number-then-escape-string"),
    ],
)
def test_old_postgresql_number_lexing_cannot_hide_code(sql: str) -> None:
    # PostgreSQL before 15 ends a number at the first non-digit: 1$b$ is 1 then a dollar quote.
    assert "several statements" in refusal(sql, PG)


@pytest.mark.parametrize("dialect", [SQLITE, None], ids=["sqlite", "every-mode"])
def test_sqlite_tcl_variable_cannot_hide_code(dialect: Dialect | None) -> None:
    # To SQLite, $a(') is one parameter name: the quote inside it opens nothing.
    assert "several statements" in refusal("SELECT $a('), 1; DELETE FROM t; --'", dialect)


@pytest.mark.parametrize("dialect", [Dialect.ORACLE, None], ids=["oracle", "every-mode"])
def test_oracle_q_quote_cannot_hide_code(dialect: Dialect | None) -> None:
    # To Oracle, q'[']' is the string "'", so FOR UPDATE is code.
    assert "'FOR UPDATE' takes locks" in refusal("SELECT q'[']' FROM t FOR UPDATE --'", dialect)


def test_double_slash_comment_cannot_hide_code() -> None:
    # Some servers and drivers read // as a line comment, which would hide the opening quote.
    assert "several statements" in refusal("SELECT 1 // ' \n ; DELETE FROM t; -- '")


@pytest.mark.parametrize(
    ("sql", "keyword"),
    [
        pytest.param("SELECT 1 SHUTDOWN", "SHUTDOWN", id="shutdown"),
        pytest.param("SELECT 1 KILL 52", "KILL", id="kill"),
        pytest.param("SELECT 1 DBCC FREEPROCCACHE", "DBCC", id="dbcc"),
        pytest.param("SELECT 1 DISABLE TRIGGER ALL ON t", "DISABLE", id="disable-trigger"),
        pytest.param("SELECT * FROM OPENROWSET('SQLNCLI', 'x', 'EXEC p')", "OPENROWSET", id="openrowset"),
        # found by tests/test_fuzz_guard.py: a SET in the same batch would undo the session's lock timeout
        pytest.param("SELECT count(*) FROM orders /**/SET LOCK_TIMEOUT -1", "SET", id="set-session-option"),
    ],
)
def test_mssql_second_statement_without_semicolon_is_refused(sql: str, keyword: str) -> None:
    assert f"'{keyword}' is not allowed" in refusal(sql, MSSQL)


@pytest.mark.parametrize(
    ("sql", "dialect"),
    [
        pytest.param("SELECT 'abc", None, id="string"),
        pytest.param('SELECT "abc', None, id="double-quotes"),
        pytest.param("SELECT 1 /* abc", None, id="comment"),
        pytest.param("SELECT 1 /* /* */", PG, id="nested-comment"),
        pytest.param("SELECT $$abc", PG, id="dollar-quote"),
        pytest.param("SELECT E'abc\\'", PG, id="escape-string"),
        pytest.param("SELECT `abc", MYSQL, id="backticks"),
        pytest.param("SELECT [abc", MSSQL, id="brackets"),
        pytest.param("SELECT q'[abc'", Dialect.ORACLE, id="q-quote"),
    ],
)
def test_refuses_anything_unterminated(sql: str, dialect: Dialect | None) -> None:
    assert "refused: unterminated" in refusal(sql, dialect)


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        pytest.param("SELECT 1\x00; DELETE FROM t", "U+0000", id="nul"),
        pytest.param("SELECT 1 -- x\r; DELETE FROM t", "U+000D", id="lone-carriage-return"),
        pytest.param("SELECT 1 -- x\u2028; DELETE FROM t", "U+2028", id="line-separator"),
        pytest.param("SELECT 1 -- x\x85; DELETE FROM t", "U+0085", id="next-line"),
        pytest.param("SELECT 1\x0bFROM t", "U+000B", id="vertical-tab"),
        pytest.param("SELECT 1\u00a0DELETE FROM t", "U+00A0", id="no-break-space-in-code"),
        pytest.param("SELECT a\u200bb FROM t", "U+200B", id="zero-width-space-in-code"),
    ],
)
def test_refuses_characters_servers_disagree_on(sql: str, code: str) -> None:
    assert code in refusal(sql)


@pytest.mark.parametrize("dialect", [None, Dialect.UNKNOWN, Dialect.ORACLE, Dialect.HANA, Dialect.DB2])
@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT 'x\\' , ' ; DELETE FROM t; -- '", id="mysql-backslash"),
        pytest.param("/* /* */ DELETE FROM t; */ SELECT 1", id="non-nesting-comment"),
        pytest.param("SELECT $$ ; DELETE FROM t; $$", id="dollar-quote"),
    ],
)
def test_dialects_without_own_rules_must_pass_every_lexical_mode(sql: str, dialect: Dialect | None) -> None:
    refusal(sql, dialect)


# --- the error itself ------------------------------------------------------------------------------------


def test_guard_error_is_a_value_error() -> None:
    assert issubclass(GuardError, ValueError)


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT 'hunter2' AS p;\nDELETE FROM t", id="several-statements"),
        pytest.param("SELECT 'hunter2'\nFROM t FOR UPDATE", id="lock"),
        pytest.param("SELECT 'hunter2'\n, nextval('s')", id="function"),
        pytest.param("SELECT 'hunter2\n", id="unterminated"),
        pytest.param("INSERT INTO t VALUES ('hunter2')", id="first-keyword"),
    ],
)
def test_error_is_one_line_and_never_echoes_the_statement(sql: str) -> None:
    message = refusal(sql)
    assert "\n" not in message
    assert "hunter2" not in message.lower()


def test_error_cuts_a_long_first_word_short() -> None:
    message = refusal("x" * 500 + " FROM t")
    assert "X" * 40 + "..." in message
    assert len(message) < 150
