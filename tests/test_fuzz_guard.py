"""Fuzzing the SQL guard: generated writes hidden in comments, string literals, CTEs, ';'-chains, case and
whitespace variants and dialect quirks never pass; generated read-only queries always do (so the first
property cannot hold just because the guard refuses everything).

Each hiding place is built together with the dialects whose server reads the write in it as code: the guard
must refuse the statement under each of them, and under "every mode" (dialect None).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.db.dialect import Dialect
from exporter.db.guard import GuardError, check_read_only

PG, MYSQL, SQLITE, MSSQL = Dialect.POSTGRESQL, Dialect.MYSQL, Dialect.SQLITE, Dialect.MSSQL
ALL = frozenset({PG, MYSQL, SQLITE, MSSQL})

# Statements that change data, schema, privileges, session settings or other sessions. {t} is a table.
WRITES = [
    "INSERT INTO {t} VALUES (1)",
    "insert into {t} select * from {t}",
    "UPDATE {t} SET total = 0",
    "DELETE FROM {t}",
    "DROP TABLE {t}",
    "CREATE TABLE x (a int)",
    "CREATE TEMPORARY TABLE x (a int)",
    "ALTER TABLE {t} ADD COLUMN c int",
    "TRUNCATE {t}",
    "GRANT ALL ON {t} TO public",
    "REVOKE SELECT ON {t} FROM public",
    "MERGE INTO {t} USING s ON 1 = 1 WHEN MATCHED THEN DELETE",
    "REPLACE INTO {t} VALUES (1)",
    "SET default_transaction_read_only = off",
    "SET SESSION TRANSACTION READ WRITE",
    "SET LOCK_TIMEOUT -1",
    "COPY {t} TO '/tmp/x'",
    "CALL p()",
    "EXEC sp_who",
    "LOCK TABLE {t}",
    "VACUUM {t}",
    "PRAGMA query_only = 0",
    "ATTACH DATABASE 'x.db' AS x",
]
# Write statements that a data-modifying CTE can hold (PostgreSQL runs them inside a WITH).
CTE_WRITES = ["INSERT INTO {t} VALUES (1) RETURNING *", "UPDATE {t} SET total = 0 RETURNING *",
              "DELETE FROM {t} RETURNING *"]
# Single SELECTs that write or change the session anyway.
WRITING_SELECTS = [
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT nextval('s')",
    "SELECT pg_terminate_backend(1)",
    "SELECT lo_import('/etc/passwd')",
    "SELECT pg_advisory_lock(1)",
    "SELECT get_lock('x', 10)",
    "SELECT * INTO backup FROM {t}",
    "SELECT * FROM {t} FOR UPDATE",
    "SELECT * FROM {t} FOR SHARE",
    "SELECT * FROM {t} LOCK IN SHARE MODE",
    "EXPLAIN ANALYZE DELETE FROM {t}",
    "SELECT load_extension('x')",
    "SELECT * FROM {t} WITH (UPDLOCK)",
    "SELECT \"nextval\"('s')",
]
TABLES = ["orders", "t", "sale_sale", '"Orders"', "appdb.orders"]
READS = ["SELECT 1", "SELECT count(*) FROM orders", "VALUES (1)", "SELECT id, total FROM orders WHERE id > 3"]
WRITE_WORDS = ["DELETE", "INSERT", "UPDATE", "DROP", "CREATE", "ALTER", "TRUNCATE", "GRANT", "MERGE", "INTO",
               "set_config", "nextval", "EXEC", "COPY"]


@dataclass(frozen=True)
class Hidden:
    sql: str
    dialects: frozenset[Dialect]  # the servers that run the write: the guard must refuse under each


def _case(draw: st.DrawFn, text: str) -> str:
    """The text with the case of each letter drawn: servers read keywords in any case."""
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(char.swapcase() if flip else char for char, flip in zip(text, flips, strict=True))


WHITESPACE = st.lists(st.sampled_from([" ", "  ", "\t", "\n", "\r\n", " /**/ ", " /* x */ ", "\n-- c\n"]),
                      min_size=1, max_size=3).map("".join)
# Comment and literal text that ends nowhere early: no quote, backslash, comment marker or line break.
COMMENT_TEXT = st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"],
                                              exclude_characters="*/\\'\"#$!-"), max_size=10)


def _spaced(draw: st.DrawFn, statement: str) -> str:
    """A statement with every space replaced by drawn whitespace and comments, in drawn letter case."""
    words = _case(draw, statement).split(" ")
    return words[0] + "".join(draw(WHITESPACE) + word for word in words[1:])


@st.composite
def hidden_writes(draw: st.DrawFn) -> Hidden:
    table = draw(st.sampled_from(TABLES))
    write = _spaced(draw, draw(st.sampled_from(WRITES)).format(t=table))
    read = _spaced(draw, draw(st.sampled_from(READS)))
    ws = draw(WHITESPACE)
    junk = draw(COMMENT_TEXT)
    decoy = draw(st.sampled_from(WRITE_WORDS))
    places = [
        # a plain chain, with the separator drawn
        Hidden(f"{read}{ws};{ws}{write}", ALL),
        Hidden(f"{read};{write};", ALL),
        # after a comment that really ends, one way or another
        Hidden(f"{read} -- {junk}\n;{write}", ALL),
        Hidden(f"{read} /* {junk} {decoy} */;{ws}{write}", ALL),
        # T-SQL runs a batch without ';' (elsewhere it is a syntax error)
        Hidden(f"{read} /*{junk}*/{write}", frozenset({MSSQL})),
        Hidden(f"{read}{ws}{write}", frozenset({MSSQL})),
        # a decoy string literal first, then the write in code
        Hidden(f"SELECT '{junk} {decoy} ''x'' ' AS s;{ws}{write}", ALL),
        # a literal that ends at the backslash for some servers (standard strings, NO_BACKSLASH_ESCAPES)
        Hidden(f"SELECT '{junk}\\'; {write}; -- '", ALL),
        # a double-quoted string for MySQL, an identifier that ends at the backslash elsewhere and in ANSI_QUOTES
        Hidden(f'SELECT "{junk}\\"; {write}; -- "', ALL),
        # nested comments: PostgreSQL and SQL Server nest them, MySQL and SQLite end at the first */
        Hidden(f"{read} /* /* {junk} */ ; {write}; */", frozenset({MYSQL, SQLITE})),
        # comments the server executes
        Hidden(f"{read} /*! ; {write} */", frozenset({MYSQL})),
        Hidden(f"{read} /*!50000 ; {write} */", frozenset({MYSQL})),
        Hidden(f"{read} /*M! ; {write} */", frozenset({MYSQL})),
        # '#' starts a comment for MySQL only: the quote after it does not open a string there
        Hidden(f"{read} #'\n; {write} -- '", frozenset({MYSQL})),
        # a dollar quote is a literal for PostgreSQL only
        Hidden(f"SELECT $a$ ; {write} ; $a$", frozenset({MYSQL, SQLITE, MSSQL})),
        # '--x' is no comment for MySQL (a space must follow)
        Hidden(f"{read} --{junk.lstrip() or 'x'}\n;{write}", ALL),
        # a CTE that writes, or a write behind an opening parenthesis
        Hidden(f"WITH x AS ({_spaced(draw, draw(st.sampled_from(CTE_WRITES)).format(t=table))}) SELECT * FROM x",
               ALL),
        Hidden(f"({write})", ALL),
        # selects that write or lock by themselves
        Hidden(_spaced(draw, draw(st.sampled_from(WRITING_SELECTS)).format(t=table)), ALL),
    ]
    return draw(st.sampled_from(places))


@settings(max_examples=1500)
@given(hidden=hidden_writes())
def test_a_hidden_write_never_passes(hidden: Hidden) -> None:
    for dialect in [None, *sorted(hidden.dialects)]:
        with pytest.raises(GuardError):
            check_read_only(hidden.sql, dialect)


# --- genuine read-only queries ---------------------------------------------------------------------------

COLUMNS = ["id", "total", "name", "state", "sale_date", "party", "created_at", "deleted", "update_count"]
SAFE_TEXT = st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "Zs"], exclude_characters="\\"),
                    max_size=12).map(lambda text: "".join(" " if char.isspace() else char for char in text))


@st.composite
def read_queries(draw: st.DrawFn) -> str:
    """A read-only query: keywords that would write appear only in literals and comments, never as code."""
    ws = draw(WHITESPACE)
    columns = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=4, unique=True))
    decoy = draw(st.sampled_from(WRITE_WORDS))
    literal = draw(st.sampled_from([
        f"'{draw(SAFE_TEXT)} {decoy} it''s; {decoy} FROM t'",
        f"'{decoy} {draw(SAFE_TEXT)}'",
        "'%;%'",
    ]))
    where = draw(st.sampled_from([
        f"WHERE name = {literal}",
        f"WHERE name LIKE {literal} AND total > {draw(st.integers(0, 10**6))}",
        f"WHERE id IN (SELECT id FROM orders WHERE name <> {literal})",
        "",
    ]))
    core = f"SELECT{ws}{', '.join(columns)}{ws}FROM{ws}orders {where}"
    query = draw(st.sampled_from([
        core,
        f"WITH recent AS ({core}) SELECT count(*) FROM recent",
        f"({core}) UNION ALL (SELECT {', '.join(columns)} FROM orders)",
        f"{core} ORDER BY {columns[0]} DESC LIMIT {draw(st.integers(1, 100))}",
        f"SELECT {_case(draw, 'count')}(*), {literal} AS note FROM orders",
    ]))
    comment = f"{decoy} {draw(SAFE_TEXT)}; {decoy}"
    return draw(st.sampled_from([
        query,
        f"-- {comment}\n{query}",
        f"/* {comment} */ {query}",
        f"{query} -- {comment}",
        f"{query};",
        f"{query}; /* {comment} */",
        _case(draw, query.replace(literal, "'x'")),
    ]))


@settings(max_examples=600)
@given(sql=read_queries())
def test_a_read_only_query_passes_under_every_dialect(sql: str) -> None:
    for dialect in (None, PG, MYSQL, SQLITE, MSSQL):
        check_read_only(sql, dialect)
