"""Path templates of `google.api.http` rules: parsing and matching.

Grammar (google/api/http.proto):

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

Matching works on the raw (still percent-encoded) request path. A variable that
spans one segment is fully percent-decoded; a variable spanning several segments
is decoded except `%2F`/`%2f`, which stay encoded (so a `/` inside a value cannot
be confused with a segment separator).

A variable that spans a resource name (`{name=documents/*}`) also takes the whole
name in its one `*` segment, percent-encoded as one segment
(`/v1/documents/documents%2Fabc`, what a generated client sends for the name a
response returned): when that segment decodes to a value that matches the
variable's own segments, the value is the name itself. Anything else keeps its
`%2F` encoded, so a `tasks/…` name in a documents path names no other resource.

A path without `%` needs no decoding, so such paths are matched by one regular
expression compiled from the template (the same answer as segment by segment,
`match_segments`; tests/unit/gateway/test_patterns.py checks them against each other).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from urllib.parse import unquote

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LITERAL = re.compile(r"[A-Za-z0-9\-._~%!$&'()+,;=@]+")


class TemplateError(ValueError):
    """The template does not follow the google.api.http grammar."""


class SegmentKind(Enum):
    LITERAL = "literal"
    WILDCARD = "*"
    DEEP_WILDCARD = "**"


@dataclass(frozen=True)
class Segment:
    kind: SegmentKind
    literal: str = ""


@dataclass(frozen=True)
class Variable:
    """A `{field.path=segments}` capture over segments[start:end]."""

    field_path: tuple[str, ...]
    start: int
    end: int

    @property
    def dotted(self) -> str:
        return ".".join(self.field_path)


@dataclass(frozen=True)
class PathTemplate:
    source: str
    segments: tuple[Segment, ...]
    variables: tuple[Variable, ...]
    verb: str

    @property
    def literal_count(self) -> int:
        return sum(1 for s in self.segments if s.kind is SegmentKind.LITERAL)

    @property
    def has_deep_wildcard(self) -> bool:
        return any(s.kind is SegmentKind.DEEP_WILDCARD for s in self.segments)

    def shape(self) -> str:
        """The template with variable names erased: equal shapes are ambiguous routes."""
        parts = [
            s.literal if s.kind is SegmentKind.LITERAL else s.kind.value for s in self.segments
        ]
        return "/" + "/".join(parts) + (":" + self.verb if self.verb else "")

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Matches a raw request path; returns decoded variable values or None."""
        compiled = self.compiled
        if compiled is None or "%" in raw_path:
            return self.match_segments(raw_path)
        found = compiled.fullmatch(raw_path)
        if found is None:
            return None
        return {var.dotted: found.group(f"v{i}") or "" for i, var in enumerate(self.variables)}

    @cached_property
    def compiled(self) -> re.Pattern[str] | None:
        """The template as a regular expression over paths without `%` (group `v<i>`
        is variable i), or None when a literal holds a `/` (from `%2F`)."""
        if any("/" in s.literal for s in self.segments):
            return None
        starts = {var.start: i for i, var in enumerate(self.variables)}
        ends = {var.end for var in self.variables}
        pattern = "/"
        for index, segment in enumerate(self.segments):
            if index in ends:
                pattern += ")"
            variable = starts.get(index)
            separator = "/" if index else ""
            if segment.kind is SegmentKind.DEEP_WILDCARD and index:
                # `**` after other segments takes zero or more parts: "" or "/a/b".
                inner = f"(?P<v{variable}>.*)" if variable is not None else ".*"
                pattern += f"(?:/{inner})?"
                if variable is not None:
                    ends.discard(index + 1)  # the group closed inside
                continue
            pattern += separator
            if variable is not None:
                pattern += f"(?P<v{variable}>"
            if segment.kind is SegmentKind.LITERAL:
                pattern += re.escape(segment.literal)
            elif segment.kind is SegmentKind.WILDCARD:
                pattern += "[^/]+"
            else:
                pattern += ".*"
        if len(self.segments) in ends:
            pattern += ")"
        if self.verb:
            pattern += re.escape(":" + self.verb)
        return re.compile(pattern, re.DOTALL)

    def match_segments(self, raw_path: str) -> dict[str, str] | None:
        """`match` segment by segment, decoding as it goes (any path)."""
        if not raw_path.startswith("/"):
            return None
        path = raw_path[1:]
        if self.verb:
            suffix = ":" + self.verb
            if not path.endswith(suffix):
                return None
            path = path[: -len(suffix)]
        parts = path.split("/")
        bounds = _match_segments(self.segments, parts)
        if bounds is None:
            return None
        values: dict[str, str] = {}
        try:
            for var in self.variables:
                captured = parts[bounds[var.start] : bounds[var.end]]
                single = var.end - var.start == 1 and (
                    self.segments[var.start].kind is SegmentKind.WILDCARD
                )
                if single:
                    values[var.dotted] = unquote(captured[0], errors="strict")
                else:
                    values[var.dotted] = self._whole_name(var, captured) or "/".join(
                        _decode_keep_slash(p) for p in captured
                    )
        except UnicodeDecodeError:
            return None
        return values

    def _whole_name(self, var: Variable, captured: list[str]) -> str | None:
        """The full resource name sent in the `*` segment of a variable with exactly
        one `*` (and no `**`), when it matches the variable's segments; else None."""
        own = self.segments[var.start : var.end]
        wildcards = [i for i, s in enumerate(own) if s.kind is not SegmentKind.LITERAL]
        if len(wildcards) != 1 or own[wildcards[0]].kind is not SegmentKind.WILDCARD:
            return None
        segment = captured[wildcards[0]]
        if not _SLASH.search(segment):
            return None
        name = unquote(segment, errors="strict")
        parts = name.split("/")
        if len(parts) != len(own) or not all(
            part != "" if s.kind is SegmentKind.WILDCARD else part == s.literal
            for s, part in zip(own, parts, strict=True)
        ):
            return None
        return name


_SLASH = re.compile(r"%2[fF]")


def _decode_keep_slash(part: str) -> str:
    pieces = _SLASH.split(part)
    slashes = _SLASH.findall(part)
    out = [unquote(pieces[0], errors="strict")]
    for slash, piece in zip(slashes, pieces[1:], strict=True):
        out.append(slash)
        out.append(unquote(piece, errors="strict"))
    return "".join(out)


def _match_segments(segments: tuple[Segment, ...], parts: list[str]) -> list[int] | None:
    """Returns, for each template segment index i (and len), the index of the first
    path part it consumed, or None when the path does not match."""
    bounds: list[int] = []
    pos = 0
    for i, seg in enumerate(segments):
        bounds.append(pos)
        if seg.kind is SegmentKind.DEEP_WILDCARD:
            # `**` is always the last segment: it takes the rest (possibly nothing).
            rest = len(segments) - i - 1
            take = len(parts) - pos - rest
            if take < 0:
                return None
            pos += take
            continue
        if pos >= len(parts):
            return None
        part = parts[pos]
        if seg.kind is SegmentKind.WILDCARD:
            if part == "":
                return None
        elif unquote(part) != seg.literal:
            return None
        pos += 1
    if pos != len(parts):
        return None
    bounds.append(pos)
    return bounds


def parse_template(source: str) -> PathTemplate:
    """Parses a path template, raising TemplateError with the reason."""
    parser = _Parser(source)
    return parser.parse()


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0
        self.segments: list[Segment] = []
        self.variables: list[Variable] = []

    def error(self, why: str) -> TemplateError:
        return TemplateError(f"invalid path template {self.source!r} at {self.pos}: {why}")

    def peek(self) -> str:
        return self.source[self.pos] if self.pos < len(self.source) else ""

    def parse(self) -> PathTemplate:
        if not self.source.startswith("/"):
            raise self.error("a template starts with '/'")
        self.pos = 1
        self.parse_segments(in_variable=False)
        verb = ""
        if self.peek() == ":":
            self.pos += 1
            verb = self.take_literal()
        if self.pos != len(self.source):
            raise self.error(f"unexpected {self.peek()!r}")
        for i, seg in enumerate(self.segments):
            if seg.kind is SegmentKind.DEEP_WILDCARD and i != len(self.segments) - 1:
                raise self.error("'**' must be the last segment")
        seen: set[str] = set()
        for var in self.variables:
            if var.dotted in seen:
                raise self.error(f"field {var.dotted!r} is bound twice")
            seen.add(var.dotted)
        return PathTemplate(self.source, tuple(self.segments), tuple(self.variables), verb)

    def parse_segments(self, in_variable: bool) -> None:
        while True:
            self.parse_segment(in_variable)
            if self.peek() != "/":
                return
            self.pos += 1

    def parse_segment(self, in_variable: bool) -> None:
        ch = self.peek()
        if self.source.startswith("**", self.pos):
            self.pos += 2
            self.segments.append(Segment(SegmentKind.DEEP_WILDCARD))
        elif ch == "*":
            self.pos += 1
            self.segments.append(Segment(SegmentKind.WILDCARD))
        elif ch == "{":
            if in_variable:
                raise self.error("variables cannot nest")
            self.parse_variable()
        else:
            self.segments.append(Segment(SegmentKind.LITERAL, self.take_literal()))

    def parse_variable(self) -> None:
        self.pos += 1
        names = [self.take_ident()]
        while self.peek() == ".":
            self.pos += 1
            names.append(self.take_ident())
        start = len(self.segments)
        if self.peek() == "=":
            self.pos += 1
            self.parse_segments(in_variable=True)
        else:
            self.segments.append(Segment(SegmentKind.WILDCARD))
        if self.peek() != "}":
            raise self.error("expected '}'")
        self.pos += 1
        self.variables.append(Variable(tuple(names), start, len(self.segments)))

    def take_ident(self) -> str:
        m = _IDENT.match(self.source, self.pos)
        if not m:
            raise self.error("expected a field name")
        self.pos = m.end()
        return m.group()

    def take_literal(self) -> str:
        m = _LITERAL.match(self.source, self.pos)
        if not m:
            raise self.error("expected a literal")
        self.pos = m.end()
        try:
            return unquote(m.group(), errors="strict")
        except UnicodeDecodeError as exc:
            raise self.error("bad percent-encoding") from exc
