"""Numeric parameters written into read-only SQL: the `:name` placeholders of ERP packs and audits.

Packs (`exporter.packs`) and data-governance audits (`exporter.audits`) let a config tune a query without
copying it: `:name` in the SQL is replaced by a number from the config (a pack default, an audit's params,
a target's override). The value is written into the SQL text, not bound by the driver, so the read-only
guard checks exactly the statement that runs, whatever each ODBC driver does with bound parameters.

Why numbers only: a parameter is the one piece of the config that reaches the SQL. A finite int or float
(never text, never YAML true/false, never NaN or infinity) renders as digits, a '-' and at most one '.',
so nothing in a config file can change what a query does, only the size of a window or a threshold.

Why parentheses: `format_number(-5)` is `(-5)`, so `a - :x` becomes `a - (-5)` and never `a --5` (the
start of a comment that would swallow the rest of the line), and an operator next to the placeholder
cannot bind to the sign. The text never has an exponent (`1e-05`), which dialects read differently, and a
whole float is written without ".0" (`1764115200.0` -> `(1764115200)`).

A placeholder is `:` and an identifier. `::` (a PostgreSQL cast) and `x:name` inside a word are not
placeholders. Placeholders are replaced everywhere in the text, inside quoted strings too: build text
from a number by concatenation (`'-' || :days || ' days'`), never `'-:days days'`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any

from pydantic import PlainValidator

# `:name` where name is an identifier; `::` (a PostgreSQL cast) and `x:name` inside words never match.
PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")


def _shown(value: Any) -> str:
    """A refused value as the config wrote it (YAML true/false, else Python's repr)."""
    return "true" if value is True else "false" if value is False else repr(value)


def finite_number(value: Any, expected: str = "a number") -> int | float:
    """`value` if it is a finite int or float; else ValueError "expected <expected>, got <value>".

    YAML true/false (Python bools are ints) and text such as '30' are refused: only digits may reach the SQL.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected {expected}, got {_shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return value


Number = Annotated[int | float, PlainValidator(finite_number, json_schema_input_type=int | float)]
"""A config value that becomes a SQL parameter: a finite int or float (see `finite_number`)."""


def number_text(value: int | float) -> str:
    """A finite number as plain decimal text: digits, a leading '-', at most one '.', never an exponent.

    Integers and whole floats have no '.0'; other floats keep the shortest digits that read back the same
    (`2.5`, `0.00001`). For SQL use `format_number`, which adds the parentheses.
    """
    finite_number(value)
    if isinstance(value, int):
        return str(value)
    if value.is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def format_number(value: int | float) -> str:
    """A number as SQL text, in parentheses so that a minus sign can never make `--` (a comment)."""
    return f"({number_text(value)})"


def placeholders(sql: str) -> list[str]:
    """The `:name` placeholders of a query, in order of first use, without duplicates."""
    return list(dict.fromkeys(match.group(1) for match in PLACEHOLDER.finditer(sql)))


def render_sql(sql: str, values: Mapping[str, int | float]) -> str:
    """Replace every `:name` by its number (`format_number`).

    Raises KeyError(name) for a placeholder without a value and ValueError for a value that is not a finite
    number; the config loaders report both at the key to change before anything runs.
    """
    return PLACEHOLDER.sub(lambda match: format_number(values[match.group(1)]), sql)
