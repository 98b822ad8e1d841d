"""Reconstruct ``proto/buf/validate/validate.proto`` from the protovalidate wheel.

What: the protovalidate 2.1.0 wheel does not ship ``buf/validate/validate.proto``;
it only embeds the serialized ``FileDescriptorProto`` in
``protovalidate/_gen/buf/validate/validate_pb.py`` (first argument of the
``file_desc(...)`` call). This script reads those bytes (by parsing the module
with ``ast``, never importing it), and prints protobuf source text that compiles
back to the identical descriptor (``source_code_info`` aside).

Why: our own ``.proto`` files import ``buf/validate/validate.proto``, and the
source is not available from any registry we can reach. Regenerating it from the
descriptor the runtime actually uses guarantees the vendored copy matches the
installed protovalidate exactly. ``tests/unit/test_validate_proto_roundtrip.py``
compiles the output and checks it against the wheel.

Custom options defined in the file itself (e.g. ``buf.validate.predefined``) are
unknown fields in ``descriptor_pb2`` option messages; they are resolved by
re-parsing each options message with classes from a descriptor pool that contains
the file, then printed as text-format aggregates.

Usage: ``python tools/reconstruct_validate_proto.py`` (rewrites the file) or
``python tools/reconstruct_validate_proto.py --stdout``.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import re
import sys
from collections.abc import Iterator, Sequence
from itertools import groupby
from pathlib import Path

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    field_mask_pb2,
    message_factory,
    text_encoding,
    text_format,
    timestamp_pb2,
    unknown_fields,
)
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT_PATH = REPO_ROOT / "proto" / "buf" / "validate" / "validate.proto"
WHEEL_MODULE = Path("_gen") / "buf" / "validate" / "validate_pb.py"
PROTOVALIDATE_VERSION = "2.1.0"

# Well-known files the descriptor may depend on; importing the modules registers
# them in the default pool, from which dependencies are copied.
_WELL_KNOWN_MODULES = (descriptor_pb2, duration_pb2, field_mask_pb2, timestamp_pb2)

FDP = descriptor_pb2.FieldDescriptorProto
INDENT = "  "
FIELD_NUMBER_MAX = 536870911  # 2**29 - 1
ENUM_NUMBER_MAX = 2147483647  # 2**31 - 1

_SCALAR_TYPE_NAMES: dict[int, str] = {
    FDP.TYPE_DOUBLE: "double",
    FDP.TYPE_FLOAT: "float",
    FDP.TYPE_INT64: "int64",
    FDP.TYPE_UINT64: "uint64",
    FDP.TYPE_INT32: "int32",
    FDP.TYPE_FIXED64: "fixed64",
    FDP.TYPE_FIXED32: "fixed32",
    FDP.TYPE_BOOL: "bool",
    FDP.TYPE_STRING: "string",
    FDP.TYPE_BYTES: "bytes",
    FDP.TYPE_UINT32: "uint32",
    FDP.TYPE_SFIXED32: "sfixed32",
    FDP.TYPE_SFIXED64: "sfixed64",
    FDP.TYPE_SINT32: "sint32",
    FDP.TYPE_SINT64: "sint64",
}

_LABEL_NAMES: dict[int, str] = {
    FDP.LABEL_OPTIONAL: "optional",
    FDP.LABEL_REQUIRED: "required",
    FDP.LABEL_REPEATED: "repeated",
}

HEADER = f"""\
// Copyright 2023-2026 Buf Technologies, Inc.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//      http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

// Reconstructed from the FileDescriptorProto embedded in protovalidate
// {PROTOVALIDATE_VERSION} (protovalidate/{WHEEL_MODULE.as_posix()}) by
// tools/reconstruct_validate_proto.py. DO NOT EDIT: re-run that script instead.
// Comments of the upstream source are not part of the descriptor and are lost.
"""


# --------------------------------------------------------------------------- #
# Loading the descriptor
# --------------------------------------------------------------------------- #


def wheel_module_path() -> Path:
    """Locate ``validate_pb.py`` inside the installed protovalidate package."""
    spec = importlib.util.find_spec("protovalidate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("protovalidate is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / WHEEL_MODULE


def extract_descriptor_bytes(module_path: Path) -> bytes:
    """Return the bytes literal passed first to ``file_desc(...)`` in the module."""
    tree = ast.parse(module_path.read_text(encoding="utf-8"), filename=str(module_path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "file_desc"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, bytes)
        ):
            return node.args[0].value
    raise RuntimeError(f"no file_desc(b'...') call found in {module_path}")


def load_wheel_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """Parse the wheel's embedded descriptor into a ``FileDescriptorProto``."""
    data = extract_descriptor_bytes(wheel_module_path())
    return descriptor_pb2.FileDescriptorProto.FromString(data)


def dependency_protos(
    file: descriptor_pb2.FileDescriptorProto,
) -> list[descriptor_pb2.FileDescriptorProto]:
    """Transitive dependencies of ``file`` from the default pool, dependencies first."""
    default = descriptor_pool.Default()
    ordered: list[descriptor_pb2.FileDescriptorProto] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        proto = descriptor_pb2.FileDescriptorProto()
        default.FindFileByName(name).CopyToProto(proto)
        for dep in proto.dependency:
            visit(dep)
        ordered.append(proto)

    for dep in file.dependency:
        visit(dep)
    return ordered


def build_pool(
    file: descriptor_pb2.FileDescriptorProto,
) -> tuple[descriptor_pool.DescriptorPool, list[descriptor_pb2.FileDescriptorProto]]:
    """A fresh pool holding ``file`` and its dependencies (returned too, in order)."""
    pool = descriptor_pool.DescriptorPool()
    files = [*dependency_protos(file), file]
    for proto in files:
        pool.Add(proto)
    return pool, files


# --------------------------------------------------------------------------- #
# Name resolution (mirrors protoc's scoped lookup, to print short names safely)
# --------------------------------------------------------------------------- #

_TYPE_KINDS = frozenset({"message", "enum"})
_AGGREGATE_KINDS = frozenset({"package", "message", "enum"})  # may contain symbols


class SymbolTable:
    """Every symbol visible to the file, full name (no leading dot) -> kind."""

    def __init__(self, files: Sequence[descriptor_pb2.FileDescriptorProto]) -> None:
        self.kinds: dict[str, str] = {}
        for file in files:
            self.add_file(file)

    def add_file(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        parts = file.package.split(".") if file.package else []
        for i in range(1, len(parts) + 1):
            self.kinds.setdefault(".".join(parts[:i]), "package")
        self._add_scope(file.package, file.message_type, file.enum_type, file.extension)
        for service in file.service:
            name = _join(file.package, service.name)
            self.kinds[name] = "service"
            for method in service.method:
                self.kinds[_join(name, method.name)] = "method"

    def _add_scope(
        self,
        scope: str,
        messages: Sequence[descriptor_pb2.DescriptorProto],
        enums: Sequence[descriptor_pb2.EnumDescriptorProto],
        extensions: Sequence[descriptor_pb2.FieldDescriptorProto],
    ) -> None:
        for enum in enums:
            self.kinds[_join(scope, enum.name)] = "enum"
            for value in enum.value:  # enum values are siblings of their enum
                self.kinds[_join(scope, value.name)] = "enum_value"
        for ext in extensions:
            self.kinds[_join(scope, ext.name)] = "extension"
        for message in messages:
            name = _join(scope, message.name)
            self.kinds[name] = "message"
            for fld in message.field:
                self.kinds[_join(name, fld.name)] = "field"
            for oneof in message.oneof_decl:
                self.kinds[_join(name, oneof.name)] = "oneof"
            self._add_scope(name, message.nested_type, message.enum_type, message.extension)

    def is_aggregate(self, name: str) -> bool:
        return self.kinds.get(name) in _AGGREGATE_KINDS

    def lookup(self, name: str, scope: str, types_only: bool) -> str | None:
        """Resolve ``name`` from ``scope`` the way protoc's LookupSymbol does.

        The first component is searched from the innermost scope outwards; a
        non-type (or non-aggregate, for dotted names) match is skipped, but an
        aggregate match commits the lookup even if the rest then fails.
        """
        first, _, rest = name.partition(".")
        while True:
            candidate = _join(scope, first)
            kind = self.kinds.get(candidate)
            if kind is not None:
                if not rest:
                    if not types_only or kind in _TYPE_KINDS:
                        return candidate
                elif self.is_aggregate(candidate):
                    full = _join(scope, name)
                    return full if full in self.kinds else None
            if not scope:
                return None
            scope = scope.rpartition(".")[0]

    def shortest_name(self, full_name: str, scope: str, types_only: bool) -> str:
        """The shortest suffix of ``full_name`` that resolves back to it from ``scope``."""
        target = full_name.lstrip(".")
        parts = target.split(".")
        for i in range(len(parts) - 1, -1, -1):
            candidate = ".".join(parts[i:])
            if self.lookup(candidate, scope, types_only) == target:
                return candidate
        return "." + target


def _join(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name


# --------------------------------------------------------------------------- #
# Formatting values and options
# --------------------------------------------------------------------------- #


def default_json_name(name: str) -> str:
    """protoc's default json_name: drop underscores, upper-case the next letter."""
    out: list[str] = []
    upper_next = False
    for char in name:
        if char == "_":
            upper_next = True
        elif upper_next:
            out.append(char.upper())
            upper_next = False
        else:
            out.append(char)
    return "".join(out)


def quote(text: str | bytes) -> str:
    """A C-escaped, double-quoted string literal accepted by protoc."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return '"' + relax_single_quotes(text_encoding.CEscape(data, as_utf8=True)) + '"'


_ESCAPE_PAIR = re.compile(r"\\(.)", re.DOTALL)


def relax_single_quotes(escaped: str) -> str:
    """Turn ``\\'`` back into ``'``: needless inside double quotes, and CEL is full of them.

    Works on whole text-format output too: backslashes only occur in string
    literals there, and escape pairs are consumed left to right, so ``\\\\``
    is never split.
    """
    return _ESCAPE_PAIR.sub(lambda m: "'" if m.group(1) == "'" else m.group(0), escaped)


def format_float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


class Printer:
    """Renders a FileDescriptorProto as .proto source text."""

    def __init__(
        self,
        file: descriptor_pb2.FileDescriptorProto,
        pool: descriptor_pool.DescriptorPool,
        symbols: SymbolTable,
    ) -> None:
        self.file = file
        self.pool = pool
        self.symbols = symbols
        self.lines: list[str] = []

    # -- output helpers ----------------------------------------------------- #

    def emit(self, depth: int, text: str = "") -> None:
        self.lines.append(INDENT * depth + text if text else "")

    def blank(self) -> None:
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    def type_ref(self, full_name: str, scope: str) -> str:
        return self.symbols.shortest_name(full_name, scope, types_only=True)

    # -- options -------------------------------------------------------------- #

    def resolve_options(self, options: Message) -> Message:
        """Re-parse ``options`` so extensions defined in this pool become known fields."""
        descriptor = self.pool.FindMessageTypeByName(options.DESCRIPTOR.full_name)
        cls = message_factory.GetMessageClass(descriptor)
        resolved = cls.FromString(options.SerializeToString())
        if len(unknown_fields.UnknownFieldSet(resolved)):
            raise ValueError(f"unresolvable option fields in {options.DESCRIPTOR.full_name}")
        return resolved

    def option_name(self, fld: FieldDescriptor, scope: str) -> str:
        if not fld.is_extension:
            return fld.name
        return "(" + self.symbols.shortest_name(fld.full_name, scope, types_only=False) + ")"

    def format_value(self, fld: FieldDescriptor, value: object, depth: int) -> str:
        """An option value: scalar literal, enum name or ``{...}`` aggregate."""
        if fld.type == FieldDescriptor.TYPE_MESSAGE or fld.type == FieldDescriptor.TYPE_GROUP:
            assert isinstance(value, Message)
            body = text_format.MessageToString(value, as_utf8=True, indent=(depth + 1) * 2)
            body = relax_single_quotes(body)
            return "{\n" + body + INDENT * depth + "}" if body else "{}"
        if fld.type == FieldDescriptor.TYPE_ENUM:
            assert isinstance(value, int)
            assert fld.enum_type is not None
            enum_value = fld.enum_type.values_by_number.get(value)
            return enum_value.name if enum_value is not None else str(value)
        if fld.type == FieldDescriptor.TYPE_BOOL:
            return "true" if value else "false"
        if fld.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
            assert isinstance(value, str | bytes)
            return quote(value)
        if fld.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            assert isinstance(value, float)
            return format_float(value)
        return str(value)

    def option_assignments(
        self, options: Message, scope: str, depth: int
    ) -> Iterator[tuple[str, str]]:
        """(name, value) pairs that reproduce ``options`` when compiled, in field order.

        Message-valued extensions whose set fields are all messages are expanded
        into one ``(ext).field = {...}`` per element (the upstream style); protoc
        merges them back into a single extension value.
        """
        resolved = self.resolve_options(options)
        for fld, value in resolved.ListFields():
            name = self.option_name(fld, scope)
            values = list(value) if _is_repeated(fld) else [value]
            for item in values:
                yield from self.expand_option(fld, name, item, scope, depth)

    def expand_option(
        self, fld: FieldDescriptor, name: str, value: object, scope: str, depth: int
    ) -> Iterator[tuple[str, str]]:
        if fld.is_extension and isinstance(value, Message):
            sub_fields = value.ListFields()
            if sub_fields and all(f.type == FieldDescriptor.TYPE_MESSAGE for f, _ in sub_fields):
                for sub, sub_value in sub_fields:
                    sub_name = f"{name}.{self.option_name(sub, scope)}"
                    items = list(sub_value) if _is_repeated(sub) else [sub_value]
                    for item in items:
                        yield sub_name, self.format_value(sub, item, depth)
                return
        yield name, self.format_value(fld, value, depth)

    def emit_option_statements(self, options: Message, scope: str, depth: int) -> None:
        for name, value in self.option_assignments(options, scope, depth):
            self.emit(depth, f"option {name} = {value};")

    def bracket_options(self, entries: list[tuple[str, str]], depth: int) -> str:
        """`` [a = 1, b = 2]`` on one line, or one entry per line when any spans lines."""
        if not entries:
            return ""
        parts = [f"{name} = {value}" for name, value in entries]
        if len(parts) == 1 and "\n" not in parts[0]:
            return f" [{parts[0]}]"
        inner = INDENT * (depth + 1)
        body = ",\n".join(inner + part for part in parts)
        return " [\n" + body + "\n" + INDENT * depth + "]"

    # -- file ----------------------------------------------------------------- #

    def render(self) -> str:
        file = self.file
        syntax = file.syntax or "proto2"
        if syntax not in ("proto2", "proto3"):
            raise NotImplementedError(f"syntax {syntax!r} (editions) is not supported")
        self.lines = HEADER.splitlines()
        self.blank()
        self.emit(0, f'syntax = "{syntax}";')
        self.blank()
        self.emit(0, f"package {file.package};")
        self.render_imports()
        if file.HasField("options"):
            self.blank()
            self.emit_option_statements(file.options, file.package, 0)
        self.render_extensions(file.extension, file.package, 0)
        for message in file.message_type:
            self.render_message(message, file.package, 0)
        for enum in file.enum_type:
            self.render_enum(enum, file.package, 0)
        if file.service:
            raise NotImplementedError("services are not supported")
        return "\n".join(self.lines).rstrip("\n") + "\n"

    def render_imports(self) -> None:
        public = set(self.file.public_dependency)
        weak = set(self.file.weak_dependency)
        self.blank()
        for index, dep in enumerate(self.file.dependency):
            modifier = "public " if index in public else "weak " if index in weak else ""
            self.emit(0, f"import {modifier}{quote(dep)};")

    # -- messages ----------------------------------------------------------------- #

    def render_message(
        self, message: descriptor_pb2.DescriptorProto, scope: str, depth: int
    ) -> None:
        full_name = _join(scope, message.name)
        self.blank()
        self.emit(depth, f"message {message.name} {{")
        if message.HasField("options"):
            self.emit_option_statements(message.options, full_name, depth + 1)
        self.render_fields(message, full_name, depth + 1)
        map_entries = self.map_entry_names(message)
        for nested in message.nested_type:
            if nested.name not in map_entries:
                self.render_message(nested, full_name, depth + 1)
        for enum in message.enum_type:
            self.render_enum(enum, full_name, depth + 1)
        self.render_extensions(message.extension, full_name, depth + 1)
        self.render_extension_ranges(message, full_name, depth + 1)
        ranges = [_range_text(r.start, r.end - 1, FIELD_NUMBER_MAX) for r in message.reserved_range]
        self.render_reserved(ranges, message.reserved_name, depth + 1)
        if self.lines[-1] == "":
            self.lines.pop()
        self.emit(depth, "}")

    def map_entry_names(self, message: descriptor_pb2.DescriptorProto) -> set[str]:
        return {n.name for n in message.nested_type if n.options.map_entry}

    def render_fields(
        self, message: descriptor_pb2.DescriptorProto, scope: str, depth: int
    ) -> None:
        """Fields in declared order; each run of fields of one real oneof is its block.

        A oneof is declared once, so its fields must be contiguous, and oneofs are
        numbered in declaration order; anything else has no source form.
        """
        rendered_oneofs: list[int] = []
        for oneof_index, run in groupby(message.field, key=_real_oneof_index):
            fields = list(run)
            if oneof_index is None:
                for fld in fields:
                    self.render_field(fld, message, scope, depth, in_oneof=False)
                continue
            if oneof_index != len(rendered_oneofs):
                raise ValueError(f"{scope}: oneof #{oneof_index} is split or out of order")
            rendered_oneofs.append(oneof_index)
            self.render_oneof(message, oneof_index, fields, scope, depth)
        synthetic = {f.oneof_index for f in message.field if f.proto3_optional}
        if len(rendered_oneofs) + len(synthetic) != len(message.oneof_decl):
            raise ValueError(f"{scope}: a oneof without fields has no source form")

    def render_oneof(
        self,
        message: descriptor_pb2.DescriptorProto,
        index: int,
        fields: list[descriptor_pb2.FieldDescriptorProto],
        scope: str,
        depth: int,
    ) -> None:
        oneof = message.oneof_decl[index]
        self.emit(depth, f"oneof {oneof.name} {{")
        if oneof.HasField("options"):
            self.emit_option_statements(oneof.options, _join(scope, oneof.name), depth + 1)
        for fld in fields:
            self.render_field(fld, message, scope, depth + 1, in_oneof=True)
        self.emit(depth, "}")

    def field_type(
        self,
        fld: descriptor_pb2.FieldDescriptorProto,
        message: descriptor_pb2.DescriptorProto | None,
        field_scope: str,
    ) -> str:
        if fld.type == FDP.TYPE_GROUP:
            raise NotImplementedError(f"group field {fld.name} is not supported")
        if fld.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM):
            entry = self.map_entry(fld, message)
            if entry is not None:
                key, value = entry.field[0], entry.field[1]
                key_type = self.field_type(key, None, field_scope)
                value_type = self.field_type(value, None, field_scope)
                return f"map<{key_type}, {value_type}>"
            return self.type_ref(fld.type_name, field_scope)
        return _SCALAR_TYPE_NAMES[fld.type]

    def map_entry(
        self,
        fld: descriptor_pb2.FieldDescriptorProto,
        message: descriptor_pb2.DescriptorProto | None,
    ) -> descriptor_pb2.DescriptorProto | None:
        if message is None or fld.label != FDP.LABEL_REPEATED:
            return None
        for nested in message.nested_type:
            if nested.options.map_entry and fld.type_name.endswith("." + nested.name):
                return nested
        return None

    def field_label(
        self,
        fld: descriptor_pb2.FieldDescriptorProto,
        message: descriptor_pb2.DescriptorProto | None,
        in_oneof: bool,
    ) -> str:
        if in_oneof or self.map_entry(fld, message) is not None:
            return ""
        if self.file.syntax == "proto3":
            if fld.proto3_optional:
                return "optional "
            return "repeated " if fld.label == FDP.LABEL_REPEATED else ""
        return _LABEL_NAMES[fld.label] + " "

    def render_field(
        self,
        fld: descriptor_pb2.FieldDescriptorProto,
        message: descriptor_pb2.DescriptorProto | None,
        scope: str,
        depth: int,
        in_oneof: bool,
    ) -> None:
        field_scope = _join(scope, fld.name)
        label = self.field_label(fld, message, in_oneof)
        type_text = self.field_type(fld, message, field_scope)
        entries: list[tuple[str, str]] = []
        if fld.HasField("default_value"):
            entries.append(("default", self.format_default(fld)))
        if fld.HasField("json_name") and fld.json_name != default_json_name(fld.name):
            entries.append(("json_name", quote(fld.json_name)))
        if fld.HasField("options"):
            entries.extend(self.option_assignments(fld.options, field_scope, depth + 1))
        brackets = self.bracket_options(entries, depth)
        self.emit(depth, f"{label}{type_text} {fld.name} = {fld.number}{brackets};")

    def format_default(self, fld: descriptor_pb2.FieldDescriptorProto) -> str:
        """``default_value`` is stored as text; strings need quoting, bytes are pre-escaped."""
        if fld.type == FDP.TYPE_STRING:
            return quote(fld.default_value)
        if fld.type == FDP.TYPE_BYTES:
            return f'"{fld.default_value}"'
        return fld.default_value

    # -- extensions, ranges, reserved ------------------------------------------ #

    def render_extensions(
        self, extensions: Sequence[descriptor_pb2.FieldDescriptorProto], scope: str, depth: int
    ) -> None:
        """``extend`` blocks; consecutive extensions of one extendee share a block."""
        i = 0
        while i < len(extensions):
            extendee = extensions[i].extendee
            self.blank()
            self.emit(depth, f"extend {self.type_ref(extendee, scope)} {{")
            while i < len(extensions) and extensions[i].extendee == extendee:
                self.render_field(extensions[i], None, scope, depth + 1, in_oneof=False)
                i += 1
            self.emit(depth, "}")

    def render_extension_ranges(
        self, message: descriptor_pb2.DescriptorProto, scope: str, depth: int
    ) -> None:
        wire_max = 2147483646 if message.options.message_set_wire_format else FIELD_NUMBER_MAX
        for ext_range in message.extension_range:
            text = _range_text(ext_range.start, ext_range.end - 1, wire_max)
            entries: list[tuple[str, str]] = []
            if ext_range.HasField("options"):
                entries = list(self.option_assignments(ext_range.options, scope, depth + 1))
            self.blank()
            self.emit(depth, f"extensions {text}{self.bracket_options(entries, depth)};")

    def render_reserved(self, ranges: list[str], names: Sequence[str], depth: int) -> None:
        if ranges:
            self.blank()
            self.emit(depth, f"reserved {', '.join(ranges)};")
        if names:
            if not ranges:
                self.blank()
            self.emit(depth, f"reserved {', '.join(quote(n) for n in names)};")

    # -- enums ------------------------------------------------------------------- #

    def render_enum(self, enum: descriptor_pb2.EnumDescriptorProto, scope: str, depth: int) -> None:
        full_name = _join(scope, enum.name)
        self.blank()
        self.emit(depth, f"enum {enum.name} {{")
        if enum.HasField("options"):
            self.emit_option_statements(enum.options, full_name, depth + 1)
        for value in enum.value:
            entries: list[tuple[str, str]] = []
            if value.HasField("options"):
                value_scope = _join(scope, value.name)
                entries = list(self.option_assignments(value.options, value_scope, depth + 1))
            self.emit(
                depth + 1,
                f"{value.name} = {value.number}{self.bracket_options(entries, depth + 1)};",
            )
        ranges = [_range_text(r.start, r.end, ENUM_NUMBER_MAX) for r in enum.reserved_range]
        self.render_reserved(ranges, enum.reserved_name, depth + 1)
        if self.lines[-1] == "":
            self.lines.pop()
        self.emit(depth, "}")


def _real_oneof_index(fld: descriptor_pb2.FieldDescriptorProto) -> int | None:
    """The oneof a field is declared in, ignoring proto3 ``optional``'s synthetic oneofs."""
    if fld.HasField("oneof_index") and not fld.proto3_optional:
        return fld.oneof_index
    return None


def _is_repeated(fld: FieldDescriptor) -> bool:
    return bool(fld.is_repeated)


def _range_text(start: int, last: int, maximum: int) -> str:
    """``N``, ``N to M`` or ``N to max`` for an inclusive range."""
    if start == last:
        return str(start)
    return f"{start} to {'max' if last == maximum else last}"


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #


def reconstruct(file: descriptor_pb2.FileDescriptorProto) -> str:
    """The .proto source text for ``file``."""
    pool, files = build_pool(file)
    return Printer(file, pool, SymbolTable(files)).render()


def main(argv: Sequence[str]) -> int:
    text = reconstruct(load_wheel_descriptor())
    if "--stdout" in argv:
        sys.stdout.write(text)
        return 0
    OUTPUT_PATH.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT_PATH.relative_to(REPO_ROOT)} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
