"""Refuse, before it is sent, any SQL that is not exactly one read-only query statement.

This is one of two independent layers that keep the exporter from writing to the monitored ERP database.
The other one, the login's privileges (a read-only role, a read-only session), is the real boundary: this
guard only sees text, so it errs on the side of refusing.

Why a tokenizer per dialect: a tokenizer that disagrees with the server about where a string literal,
quoted identifier or comment ends can be made to see harmless text where the server sees code. So each
dialect is checked with its server's lexical rules (in several variants where a server setting changes
them), and a dialect without its own rules must pass under all of them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from exporter.db.dialect import Dialect


class GuardError(ValueError):
    """The statement was refused; str(error) is a clear one-line reason naming what was found."""


_ALLOWED_FIRST_WORDS = ("SELECT", "WITH", "VALUES", "SHOW", "EXPLAIN")

# Refused anywhere in code, as whole words. The DML words also catch PostgreSQL data-modifying CTEs and
# Db2's FINAL TABLE (INSERT ...); INTO catches SELECT ... INTO (a new table, MySQL's INTO OUTFILE).
_FORBIDDEN_WORDS = frozenset({
    "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "TRUNCATE", "DROP", "ALTER", "CREATE", "GRANT", "REVOKE",
    "INTO", "LOCK", "COPY", "CALL", "EXEC", "EXECUTE", "ATTACH", "DETACH", "PRAGMA", "VACUUM", "REINDEX",
    "CLUSTER", "REFRESH",
})  # fmt: skip

# T-SQL runs every statement of a batch, with or without a ';' between them ("SELECT 1 SHUTDOWN"), so
# under its rules the statement keywords that write, lock out or reach other servers are refused anywhere,
# and SET too: "SELECT 1 SET LOCK_TIMEOUT -1" would undo the session setup's lock timeout (T-SQL reserves
# the word, so no read-only query has it outside brackets).
_MSSQL_BATCH_WORDS = frozenset({
    "BACKUP", "BULK", "DBCC", "DENY", "DISABLE", "ENABLE", "KILL", "OPENDATASOURCE", "OPENQUERY",
    "OPENROWSET", "RECEIVE", "RECONFIGURE", "RESTORE", "SEND", "SET", "SETUSER", "SHUTDOWN", "UPDATETEXT",
    "WRITETEXT",
})  # fmt: skip

# Row-lock clauses (PostgreSQL, MySQL/MariaDB, Oracle, HANA, Db2) and SQL Server lock hints: a monitoring
# query must never make the ERP wait for it.
_LOCK_CLAUSES: tuple[tuple[str, ...], ...] = (
    ("FOR", "UPDATE"), ("FOR", "SHARE"), ("FOR", "NO", "KEY", "UPDATE"), ("FOR", "KEY", "SHARE"),
    ("LOCK", "IN", "SHARE", "MODE"), ("KEEP", "UPDATE", "LOCKS"), ("KEEP", "SHARE", "LOCKS"),
    ("KEEP", "EXCLUSIVE", "LOCKS"), ("UPDLOCK",), ("XLOCK",), ("HOLDLOCK",), ("TABLOCK",), ("TABLOCKX",),
)  # fmt: skip

# Functions with side effects, refused by name (as whole words and as quoted identifiers). The guard is a
# layer, not the boundary: the login's privileges are. This list stops the well-known ones; it cannot know
# user-defined functions, so a read-only login must still make all of them harmless.
_SIDE_EFFECT_FUNCTIONS: tuple[str, ...] = (
    # PostgreSQL: settings (could switch the session out of read-only), sequences, other backends, server
    "set_config", "nextval", "setval", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
    "pg_rotate_logfile", "pg_switch_wal", "pg_create_restore_point", "pg_promote",
    # PostgreSQL advisory locks: each variant is its own whole word
    "pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared",
    "pg_try_advisory_lock", "pg_try_advisory_lock_shared", "pg_try_advisory_xact_lock",
    "pg_try_advisory_xact_lock_shared",
    # PostgreSQL large objects (server files) and replication slots
    "lo_import", "lo_export", "lo_unlink", "lo_create", "lo_from_bytea", "lo_put", "lowrite", "lo_truncate",
    "pg_drop_replication_slot", "pg_create_logical_replication_slot", "pg_create_physical_replication_slot",
    "pg_logical_emit_message",
    # PostgreSQL statistics resets: they would wipe the very counters this exporter reports
    "pg_stat_reset", "pg_stat_reset_shared", "pg_stat_reset_single_table_counters",
    "pg_stat_reset_single_function_counters", "pg_stat_reset_slru", "pg_stat_reset_replication_slot",
    "pg_stat_statements_reset",
    # SQL passed as a string literal, where this guard cannot see it: another database, or this one
    "dblink", "dblink_exec", "dblink_open", "dblink_send_query", "query_to_xml", "query_to_xmlschema",
    "query_to_xml_and_xmlschema", "ts_stat",
    # MySQL/MariaDB named locks; SQLite extensions and files; well-known command-running UDFs
    "get_lock", "release_lock", "release_all_locks", "load_extension", "writefile", "sys_exec", "sys_eval",
)  # fmt: skip
_SIDE_EFFECT_NAMES = frozenset(name.upper() for name in _SIDE_EFFECT_FUNCTIONS)

_WHITESPACE = " \t\r\n"  # every other control character is refused before tokenizing
_Q_QUOTE_PAIRS = {"[": "]", "{": "}", "(": ")", "<": ">"}


@dataclass(frozen=True)
class _Quote:
    """How a quoted token ends: everything up to its closing character is data, never code."""

    closing: str
    identifier: bool = False  # a quoted name ("..", `..`, [..]) rather than a string literal
    backslash: bool = False  # a backslash escapes the next character (MySQL, PostgreSQL E'...')
    doubling: bool = True  # the closing character written twice stands for itself


@dataclass(frozen=True)
class _LexicalMode:
    """The lexical rules of one server (or one server setting) that decide what is code."""

    name: str
    quotes: Mapping[str, _Quote]  # opening character -> how the quoted token ends
    prefixed_strings: Mapping[str, _Quote] = field(default_factory=dict)  # PostgreSQL E'..', B'..', X'..'
    nested_comments: bool = False  # /* /* */ */ is one comment (PostgreSQL, SQL Server)
    hash_comments: bool = False  # '#' starts a line comment (MySQL)
    dash_comment_needs_space: bool = False  # MySQL: '--' is a comment only before a space or the end
    slash_comments: bool = False  # '//' starts a line comment (some drivers and servers)
    executable_comments: bool = False  # MySQL runs the content of /*! ... */ and MariaDB of /*M! ... */
    dollar_quotes: bool = False  # PostgreSQL $tag$...$tag$
    q_quotes: bool = False  # Oracle q'[...]'
    sqlite_variables: bool = False  # SQLite $name(any text without spaces), @name, :name, #name
    extra_forbidden: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Token:
    kind: Literal["word", "identifier", "literal", "symbol"]
    text: str
    glued: bool = False  # a word written right after a number, as in 0x0INTO


_SINGLE = _Quote("'")
_DOUBLE_ID = _Quote('"', identifier=True)
_BACKTICK_ID = _Quote("`", identifier=True)
_BRACKET_ID_NO_ESCAPE = _Quote("]", identifier=True, doubling=False)  # SQLite: [a]]b] is [a] then junk


def _postgresql(standard_conforming_strings: bool) -> _LexicalMode:
    # standard_conforming_strings=off (a server or role setting) makes '\' an escape in plain strings too.
    plain = _SINGLE if standard_conforming_strings else _Quote("'", backslash=True)
    bits = _Quote("'", doubling=False)  # B'..' and X'..' end at the first quote
    return _LexicalMode(
        name="postgresql" + ("" if standard_conforming_strings else " standard_conforming_strings=off"),
        quotes={"'": plain, '"': _DOUBLE_ID},
        prefixed_strings={"e": _Quote("'", backslash=True), "b": bits, "x": bits},
        nested_comments=True,
        dollar_quotes=True,
    )


def _mysql(backslash_escapes: bool, ansi_quotes: bool) -> _LexicalMode:
    # sql_mode NO_BACKSLASH_ESCAPES and ANSI_QUOTES change where literals end, and a session can set them.
    single = _Quote("'", backslash=backslash_escapes)
    double = _DOUBLE_ID if ansi_quotes else _Quote('"', backslash=backslash_escapes)
    ansi = " ANSI_QUOTES" if ansi_quotes else ""
    return _LexicalMode(
        name="mysql" + ansi + ("" if backslash_escapes else " NO_BACKSLASH_ESCAPES"),
        quotes={"'": single, '"': double, "`": _BACKTICK_ID},
        hash_comments=True,
        dash_comment_needs_space=True,
        executable_comments=True,
    )


_POSTGRESQL_MODES = (_postgresql(True), _postgresql(False))
_MYSQL_MODES = tuple(_mysql(backslash, ansi) for backslash in (True, False) for ansi in (False, True))
_SQLITE = _LexicalMode(
    name="sqlite",
    quotes={"'": _SINGLE, '"': _DOUBLE_ID, "`": _BACKTICK_ID, "[": _BRACKET_ID_NO_ESCAPE},
    sqlite_variables=True,
)
_MSSQL = _LexicalMode(
    name="mssql",
    quotes={"'": _SINGLE, '"': _DOUBLE_ID, "[": _Quote("]", identifier=True)},
    nested_comments=True,
    extra_forbidden=_MSSQL_BATCH_WORDS,
)
_ANSI_QUOTES = {"'": _SINGLE, '"': _DOUBLE_ID}
_ANSI = _LexicalMode(name="ansi", quotes=_ANSI_QUOTES)
_ORACLE = _LexicalMode(name="oracle", quotes=_ANSI_QUOTES, q_quotes=True)
_SLASH = _LexicalMode(name="ansi with // comments", quotes=_ANSI_QUOTES, slash_comments=True)

_MODES_BY_DIALECT: dict[Dialect, tuple[_LexicalMode, ...]] = {
    Dialect.POSTGRESQL: _POSTGRESQL_MODES,
    Dialect.MYSQL: _MYSQL_MODES,
    Dialect.SQLITE: (_SQLITE,),
    Dialect.MSSQL: (_MSSQL,),
}
_ALL_MODES = (*_POSTGRESQL_MODES, *_MYSQL_MODES, _SQLITE, _MSSQL, _ANSI, _ORACLE, _SLASH)


def check_read_only(sql: str, dialect: Dialect | None = None) -> None:
    """Raise GuardError unless `sql` is exactly one read-only query statement.

    dialect None (or UNKNOWN/other) means: the SQL must pass under every lexical mode.
    """
    _refuse_ambiguous_characters(sql)
    modes = _MODES_BY_DIALECT.get(dialect, _ALL_MODES) if dialect is not None else _ALL_MODES
    for mode in modes:
        try:
            _check_tokens(_tokenize(sql, mode), mode)
        except GuardError as error:
            if mode is modes[0]:
                raise
            # Only a variant found it: say which, so the author can see why the same SQL passed elsewhere.
            raise GuardError(f"{error} (under {mode.name} lexical rules)") from None


def _refuse_ambiguous_characters(sql: str) -> None:
    # Servers disagree on whether a lone CR, NUL, NEL or U+2028 ends a line comment or the statement text.
    for index, char in enumerate(sql):
        code = ord(char)
        if char in "\t\n" or (char == "\r" and sql.startswith("\n", index + 1)):
            continue
        if code < 0x20 or 0x7F <= code <= 0x9F or char in "\u2028\u2029":
            raise GuardError(f"refused: control character U+{code:04X} (servers disagree on what it ends)")


def _check_tokens(tokens: list[_Token], mode: _LexicalMode) -> None:
    semicolons = [index for index, token in enumerate(tokens) if token == _Token("symbol", ";")]
    if any(index != len(tokens) - 1 for index in semicolons):
        raise GuardError("refused: several statements (only one query is allowed)")
    body = tokens[:-1] if semicolons else tokens
    if not body:
        raise GuardError("refused: empty statement (nothing but whitespace, comments or ';')")
    first = next((token for token in body if token != _Token("symbol", "(")), None)
    if first is None or first.kind != "word":
        raise GuardError(f"refused: statement does not start with {', '.join(_ALLOWED_FIRST_WORDS)}")
    if first.text.upper() not in _ALLOWED_FIRST_WORDS:
        raise GuardError(
            f"refused: statement starts with {_quoted(first.text.upper())}; only "
            f"{', '.join(_ALLOWED_FIRST_WORDS[:-1])} or {_ALLOWED_FIRST_WORDS[-1]} are allowed"
        )
    # EXPLAIN ANALYZE runs the statement. PostgreSQL also accepts the option quoted: EXPLAIN ("analyze").
    names = [token.text.upper() for token in body if token.kind in ("word", "identifier")]
    if first.text.upper() == "EXPLAIN" and ("ANALYZE" in names or "ANALYSE" in names):
        raise GuardError("refused: EXPLAIN ANALYZE executes the statement")
    words = [token.text.upper() if token.kind == "word" else "" for token in body]
    for start in range(len(words)):
        for clause in _LOCK_CLAUSES:
            if tuple(words[start : start + len(clause)]) == clause:
                raise GuardError(f"refused: {_quoted(' '.join(clause))} takes locks in a read-only query")
    forbidden = _FORBIDDEN_WORDS | mode.extra_forbidden
    for token in body:
        if token.kind == "word":
            spellings = _spellings(token.text, token.glued)
            if found := spellings & forbidden:
                raise GuardError(f"refused: {_quoted(min(found))} is not allowed in a read-only query")
        elif token.kind == "identifier":
            # A quoted name is never a keyword, but "nextval"('s') or `get_lock`(...) still calls it.
            spellings = {token.text.upper()}
        else:
            continue
        if found := spellings & _SIDE_EFFECT_NAMES:
            raise GuardError(f"refused: function {_quoted(min(found).lower())} has side effects")


def _spellings(text: str, glued: bool = False) -> set[str]:
    """The ways a server may read a word: whole, and split at '$' or symbols, which not all servers
    accept inside identifiers; compatibility-folded (fullwidth letters) and upper-cased.

    A word glued to a number may lose any prefix to it (0x0INTO is 0x0 INTO to a server that reads
    hexadecimal there), so then every suffix counts.
    """
    folded = unicodedata.normalize("NFKC", text).upper()
    parts = {folded, *(part for part in re.split(r"\W+", folded) if part)}
    return {part[start:] for part in parts for start in range(len(part))} if glued else parts


def _quoted(text: str) -> str:
    # Only ever the offending keyword, cut short: the statement itself could hold secrets.
    return "'" + (text if len(text) <= 40 else text[:40] + "...") + "'"


def _tokenize(sql: str, mode: _LexicalMode) -> list[_Token]:
    """The code tokens of `sql` under `mode`: words, quoted identifiers, literals and single-char symbols.

    Comments and whitespace are dropped. Raises GuardError on anything unterminated or ambiguous.
    """
    tokens: list[_Token] = []
    i, end = 0, len(sql)
    while i < end:
        char, pair = sql[i], sql[i : i + 2]
        if char in _WHITESPACE:
            i += 1
        elif (
            (pair == "--" and (not mode.dash_comment_needs_space or sql[i + 2 : i + 3] in ("", *_WHITESPACE)))
            or (char == "#" and mode.hash_comments)
            or (pair == "//" and mode.slash_comments)
        ):
            newline = sql.find("\n", i)
            i = end if newline < 0 else newline + 1
        elif pair == "/*":
            i = _block_comment_end(sql, i, mode)
        elif char == "$" and mode.dollar_quotes and (after := _dollar_quote_end(sql, i)) is not None:
            tokens.append(_Token("literal", ""))
            i = after
        elif char in "$@:#" and mode.sqlite_variables:
            tokens.append(_Token("symbol", char))
            i = _sqlite_variable_end(sql, i)
        elif char in mode.quotes:
            quote = mode.quotes[char]
            after = _quoted_end(sql, i + 1, quote)
            if quote.identifier:
                tokens.append(_Token("identifier", sql[i + 1 : after - 1]))
            else:
                tokens.append(_Token("literal", ""))
            i = after
        elif _is_digit(char):
            tokens.append(_Token("literal", ""))
            i = _number_end(sql, i)
        elif _is_word_char(char) and char != "$":
            i = _read_word(sql, i, mode, tokens)
        else:
            tokens.append(_Token("symbol", char))
            i += 1
    return tokens


def _read_word(sql: str, start: int, mode: _LexicalMode, tokens: list[_Token]) -> int:
    # A word, or the prefix of a literal whose rules it changes (E'..' escapes, q'[..]' delimiters).
    i = start
    while i < len(sql) and _is_word_char(sql[i]):
        if not sql[i].isascii() and unicodedata.category(sql[i])[0] in "ZC":
            # A no-break space is whitespace to some servers and part of a name to others.
            raise GuardError(f"refused: space or invisible character U+{ord(sql[i]):04X} outside a literal")
        i += 1
    word = sql[start:i].lower()
    if sql.startswith("'", i) and word in mode.prefixed_strings:
        tokens.append(_Token("literal", ""))
        return _quoted_end(sql, i + 1, mode.prefixed_strings[word])
    if sql.startswith("'", i) and mode.q_quotes and word in ("q", "nq"):
        opening = sql[i + 1 : i + 2]
        close = sql.find(_Q_QUOTE_PAIRS.get(opening, opening) + "'", i + 2) if opening else -1
        if close < 0:
            raise GuardError("refused: unterminated string literal")
        tokens.append(_Token("literal", ""))
        return close + 2
    if word == "u" and sql.startswith('&"', i):
        # U&"\0073et_config" spells a name in escapes this guard does not decode.
        raise GuardError('refused: Unicode-escaped identifier U&"..." cannot be checked')
    tokens.append(_Token("word", sql[start:i], glued=start > 0 and _is_digit(sql[start - 1])))
    return i


def _is_word_char(char: str) -> bool:
    # Every server here takes non-ASCII characters and '$' (not first) as part of a name.
    return char.isalnum() or char in "_$" if char.isascii() else True


def _quoted_end(sql: str, i: int, quote: _Quote) -> int:
    """Index just after the closing character of a quoted token whose content starts at i."""
    while i < len(sql):
        if quote.backslash and sql[i] == "\\":
            i += 2
        elif sql[i] == quote.closing:
            if not (quote.doubling and sql.startswith(quote.closing, i + 1)):
                return i + 1
            i += 2
        else:
            i += 1
    raise GuardError(f"refused: unterminated {'quoted identifier' if quote.identifier else 'string literal'}")


def _block_comment_end(sql: str, start: int, mode: _LexicalMode) -> int:
    marker = sql[start + 2 : start + 4].upper()
    if mode.executable_comments and (marker.startswith("!") or marker == "M!"):
        raise GuardError("refused: executable comment /*! ... */ (MySQL and MariaDB run its content)")
    depth, i = 1, start + 2
    while i < len(sql):
        if sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        elif mode.nested_comments and sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        else:
            i += 1
    raise GuardError("refused: unterminated comment")


def _dollar_quote_end(sql: str, start: int) -> int | None:
    """End of a PostgreSQL $tag$...$tag$ literal at start, or None when this '$' opens none ($1 is a
    parameter). The tag is name characters, not starting with a digit."""
    i = start + 1
    if i < len(sql) and _is_word_char(sql[i]) and not _is_digit(sql[i]) and sql[i] != "$":
        while i < len(sql) and _is_word_char(sql[i]) and sql[i] != "$":
            i += 1
    if not sql.startswith("$", i):
        return None
    delimiter = sql[start : i + 1]
    close = sql.find(delimiter, i + 1)
    if close < 0:
        raise GuardError("refused: unterminated dollar-quoted string literal")
    return close + len(delimiter)


def _number_end(sql: str, i: int) -> int:
    # Only digits, fraction and exponent: older PostgreSQL reads 1e'..' as 1 followed by an E'..' string,
    # 1$a$ as 1 followed by a dollar quote, and 1into as 1 INTO, so the rest must be lexed on its own.
    i = _digits_end(sql, i)
    if sql.startswith(".", i) and _is_digit(sql[i + 1 : i + 2]):
        i = _digits_end(sql, i + 1)
    if sql[i : i + 1] in ("e", "E"):
        exponent = i + 2 if sql[i + 1 : i + 2] in ("+", "-") else i + 1
        if _is_digit(sql[exponent : exponent + 1]):
            i = _digits_end(sql, exponent)
    return i


def _digits_end(sql: str, i: int) -> int:
    while i < len(sql) and _is_digit(sql[i]):
        i += 1
    return i


def _is_digit(char: str) -> bool:
    # ASCII only: str.isdigit() is also true for '²' and other scripts' digits, which servers read as letters.
    return len(char) == 1 and "0" <= char <= "9"


def _sqlite_variable_end(sql: str, start: int) -> int:
    # SQLite's Tcl-style variables swallow '(' ... ')' up to a space, quotes and ';' included: $a(';').
    i, name_chars = start + 1, 0
    while i < len(sql):
        if _is_word_char(sql[i]):
            i, name_chars = i + 1, name_chars + 1
        elif sql[i] == "(" and name_chars:
            close = i + 1
            while close < len(sql) and sql[close] not in " \t\n\r\f\v)":
                close += 1
            if not sql.startswith(")", close):
                raise GuardError("refused: unterminated SQLite parameter name")
            return close + 1
        elif sql.startswith("::", i):
            i += 2
        else:
            break
    return i
