"""AIP-160 filters (a documented subset) compiled to parameterised SQL.

Grammar::

    filter     := expression?
    expression := sequence (OR sequence)*
    sequence   := factor ((AND)? factor)*          # juxtaposition means AND
    factor     := (NOT | '-') factor | '(' expression ')' | comparison
    comparison := field op value | field ':' key
    field      := NAME ('.' NAME)*                  # e.g. labels.team
    op         := '=' | '!=' | '<' | '<=' | '>' | '>='
    value      := "string" | 'string' | bare word   # bare: enum names, numbers; quote timestamps

Fields are whitelisted per RPC with their SQL column and kind. Values never
reach the SQL text: every value becomes a `$n` parameter. A syntax error is
INVALID_ARGUMENT on `filter` naming the character position (1-based).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from services.platform.errors import InvalidArgument

Kind = Literal["string", "timestamp", "enum", "map"]
MAX_DEPTH = 32
MAX_COMPARISONS = 64


@dataclass(frozen=True)
class FilterField:
    """A filterable field: its SQL expression and how values are read.

    `enum` is a protobuf enum wrapper (e.g. `task_service_pb2.TaskState`); enum values are
    written by name and compiled to their number, unless `enum_as_name` is set.
    """

    column: str
    kind: Kind
    enum: Any = None
    enum_as_name: bool = False


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<op><=|>=|!=|=|<|>|:)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<minus>-(?=[\s(A-Za-z_]))
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<word>[A-Za-z0-9_][A-Za-z0-9_.+\-]*)
    """,
    re.VERBOSE,
)
_KEYWORDS = {"AND", "OR", "NOT"}
_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _error(message: str, pos: int) -> InvalidArgument:
    return InvalidArgument.for_field(
        "filter", f"{message} at position {pos + 1}", reason="FILTER_SYNTAX"
    )


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _error(f"unexpected character {text[pos]!r}", pos)
        kind = match.lastgroup or ""
        if kind != "ws":
            word = match.group()
            if kind == "word" and word in _KEYWORDS:
                kind = word
            tokens.append(_Token(kind, word, pos))
        pos = match.end()
    return tokens


class _Compiler:
    def __init__(self, text: str, fields: Mapping[str, FilterField], first_param: int) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.fields = fields
        self.index = 0
        self.params: list[Any] = []
        self.first_param = first_param
        self.comparisons = 0

    # -- token helpers ------------------------------------------------------
    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, kind: str | None = None) -> _Token:
        token = self.peek()
        if token is None:
            raise _error("unexpected end of filter", len(self.text))
        if kind is not None and token.kind != kind:
            raise _error(f"expected {kind}, found {token.text!r}", token.pos)
        self.index += 1
        return token

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${self.first_param + len(self.params) - 1}"

    # -- grammar -----------------------------------------------------------
    def compile(self) -> str:
        if not self.tokens:
            return "TRUE"
        sql = self.expression(0)
        leftover = self.peek()
        if leftover is not None:
            raise _error(f"unexpected {leftover.text!r}", leftover.pos)
        return sql

    def expression(self, depth: int) -> str:
        parts = [self.sequence(depth)]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.take()
            parts.append(self.sequence(depth))
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def sequence(self, depth: int) -> str:
        parts = [self.factor(depth)]
        while (token := self.peek()) is not None and token.kind not in ("OR", "rparen"):
            if token.kind == "AND":
                self.take()
            parts.append(self.factor(depth))
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def factor(self, depth: int) -> str:
        if depth > MAX_DEPTH:
            token = self.peek()
            raise _error("filter nests too deeply", token.pos if token else len(self.text))
        token = self.take()
        if token.kind in ("NOT", "minus"):
            return f"(NOT {self.factor(depth + 1)})"
        if token.kind == "lparen":
            inner = self.expression(depth + 1)
            self.take("rparen")
            return inner
        if token.kind == "word":
            return self.comparison(token)
        raise _error(f"unexpected {token.text!r}", token.pos)

    def comparison(self, name: _Token) -> str:
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise _error(f"more than {MAX_COMPARISONS} comparisons", name.pos)
        root, _, key = name.text.partition(".")
        field = self.fields.get(root)
        if field is None:
            known = ", ".join(sorted(self.fields))
            raise _error(f"unknown field {root!r} (filterable: {known})", name.pos)
        op = self.take("op")
        if field.kind == "map":
            return self.map_comparison(field, root, key, op, name)
        if key:
            raise _error(f"field {root!r} has no subfields", name.pos)
        if op.text == ":":
            raise _error(f"':' applies to map fields only, not {root!r}", op.pos)
        value_token = self.value()
        value = self.convert(field, root, value_token)
        if field.kind in ("string", "enum") and op.text not in ("=", "!="):
            raise _error(f"{root!r} supports = and != only", op.pos)
        return f"{field.column} {_OPS[op.text]} {self.param(value)}"

    def map_comparison(
        self, field: FilterField, root: str, key: str, op: _Token, name: _Token
    ) -> str:
        if op.text == ":":
            wanted = self.value()
            return f"({field.column} ? {self.param(self.unquote(wanted))})"
        if not key:
            raise _error(f'compare a key of {root!r}, e.g. {root}.team = "x"', name.pos)
        if op.text not in ("=", "!="):
            raise _error(f"{root}.{key} supports = and != only", op.pos)
        value = self.unquote(self.value())
        key_param = self.param(key)
        value_param = self.param(value)
        if op.text == "=":
            return f"(({field.column} ->> {key_param}) = {value_param})"
        return f"(({field.column} ->> {key_param}) IS DISTINCT FROM {value_param})"

    def value(self) -> _Token:
        token = self.take()
        if token.kind not in ("string", "word"):
            raise _error(f"expected a value, found {token.text!r}", token.pos)
        return token

    @staticmethod
    def unquote(token: _Token) -> str:
        if token.kind != "string":
            return token.text
        body = token.text[1:-1]
        return re.sub(r"\\(.)", r"\1", body)

    def convert(self, field: FilterField, root: str, token: _Token) -> Any:
        raw = self.unquote(token)
        if field.kind == "string":
            return raw
        if field.kind == "timestamp":
            try:
                parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError as exc:
                raise _error(f"{raw!r} is not an RFC 3339 timestamp", token.pos) from exc
            if parsed.tzinfo is None:
                raise _error(f"{raw!r} needs a time zone (e.g. Z)", token.pos)
            return parsed
        names = list(field.enum.keys()) if field.enum is not None else []
        if raw not in names:
            raise _error(f"{raw!r} is not a {root} value (one of {', '.join(names)})", token.pos)
        return raw if field.enum_as_name else field.enum.Value(raw)


def compile_filter(
    text: str, fields: Mapping[str, FilterField], first_param: int = 1
) -> tuple[str, list[Any]]:
    """SQL boolean expression and its parameters (numbered from `first_param`)."""
    compiler = _Compiler(text, fields, first_param)
    sql = compiler.compile()
    return sql, compiler.params
