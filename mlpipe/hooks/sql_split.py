"""Splitting a SQL script into statements (quotes, comments and ``$$`` bodies respected)."""

from __future__ import annotations

import re

# One token at a time: quoted strings, comments and dollar-quoted bodies are kept whole, so
# a ';' inside them does not end a statement.
_TOKEN = re.compile(
    r"""
      '(?:[^']|'')*'                 # 'string' ('' escapes a quote)
    | "(?:[^"]|"")*"                 # "identifier"
    | --[^\n]*                       # -- comment
    | /\*.*?\*/                      # /* comment */
    | (\$[A-Za-z_]*\$).*?\1          # $tag$ body $tag$ (PostgreSQL)
    | ;                              # the end of a statement
    | [^'"\-/$;]+                    # anything else, in runs
    | .                              # a lone - / or $
    """,
    re.VERBOSE | re.DOTALL,
)


def split_statements(sql: str) -> list[str]:
    """The non-empty statements of ``sql``, without their trailing ``;``."""
    statements: list[str] = []
    current: list[str] = []
    for match in _TOKEN.finditer(sql):
        token = match.group(0)
        if token == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(token)
    statements.append("".join(current))
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    """False for a statement that is only whitespace and comments."""
    stripped = re.sub(r"--[^\n]*|/\*.*?\*/", "", statement, flags=re.DOTALL)
    return bool(stripped.strip())
