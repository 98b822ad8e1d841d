"""protovalidate field rules (`(buf.validate.field)`) carried into JSON Schema, so
the OpenAPI document (and MCP tool schemas) say what the services will accept:
string lengths and patterns, numeric ranges, `in` lists, item and pair counts,
map key patterns, and `required`.

What JSON Schema cannot say in the proto3 JSON form is left to the description
or left out: 64-bit integers are JSON strings, so their range becomes a digits
pattern when it excludes negatives plus a sentence; duration and timestamp
ranges and CEL expressions are not carried. `ignore: IGNORE_ALWAYS` drops the
rules; `IGNORE_IF_ZERO_VALUE` lets the zero value through (an empty string
matches, a range that excludes 0 is not carried).
"""

from __future__ import annotations

from typing import Any

from buf.validate import validate_pb2
from google.protobuf.descriptor import FieldDescriptor

from gateway.jsonmap import enum_type, is_map, is_repeated, message_type

Schema = dict[str, Any]

_JSON_NUMBER_RULES = ("int32", "uint32", "sint32", "fixed32", "sfixed32", "float", "double")
_JSON_STRING_INTEGER_RULES = ("int64", "uint64", "sint64", "fixed64", "sfixed64")
_IN = "in"  # a Python keyword: the `in` rule is read with getattr
_STRING_FORMATS = {
    "email": "email",
    "hostname": "hostname",
    "ipv4": "ipv4",
    "ipv6": "ipv6",
    "uri": "uri",
    "uri_ref": "uri-reference",
    "uuid": "uuid",
}


def field_rules(field: FieldDescriptor) -> validate_pb2.FieldRules | None:
    """The field's protovalidate rules, or None when it has none."""
    options = field.GetOptions()
    extension: Any = validate_pb2.field
    if not options.HasExtension(extension):
        return None
    rules: validate_pb2.FieldRules = options.Extensions[extension]
    return rules


def is_required(field: FieldDescriptor) -> bool:
    """Whether protovalidate requires the field to be set."""
    rules = field_rules(field)
    return rules is not None and rules.required and rules.ignore != validate_pb2.IGNORE_ALWAYS


def constrain(field: FieldDescriptor, schema: Schema) -> Schema:
    """`schema` (the field's schema from SchemaBuilder.field) with the field's rules
    applied; a new dict, the input is left as it was."""
    rules = field_rules(field)
    if rules is None or rules.ignore == validate_pb2.IGNORE_ALWAYS:
        return schema
    zero_ok = rules.ignore == validate_pb2.IGNORE_IF_ZERO_VALUE
    out = dict(schema)
    if is_map(field) and rules.HasField("map"):
        entry = message_type(field).fields_by_name
        _map_rules(rules.map, out, entry["key"], entry["value"])
    elif is_repeated(field) and rules.HasField("repeated"):
        _repeated_rules(rules.repeated, out, field)
    elif not is_repeated(field):
        out = _single_rules(rules, out, field, zero_ok)
    return out


def _repeated_rules(
    rules: validate_pb2.RepeatedRules, schema: Schema, field: FieldDescriptor
) -> None:
    if rules.HasField("min_items"):
        schema["minItems"] = rules.min_items
    if rules.HasField("max_items"):
        schema["maxItems"] = rules.max_items
    if rules.unique:
        schema["uniqueItems"] = True
    if rules.HasField("items") and isinstance(schema.get("items"), dict):
        schema["items"] = _single_rules(rules.items, dict(schema["items"]), field, False)


def _map_rules(
    rules: validate_pb2.MapRules,
    schema: Schema,
    key: FieldDescriptor,
    value: FieldDescriptor,
) -> None:
    if rules.HasField("min_pairs"):
        schema["minProperties"] = rules.min_pairs
    if rules.HasField("max_pairs"):
        schema["maxProperties"] = rules.max_pairs
    if rules.HasField("keys") and rules.keys.HasField("string"):
        names: Schema = {}
        _string_rules(rules.keys.string, names, False)
        if names:
            schema["propertyNames"] = names
    if rules.HasField("values") and isinstance(schema.get("additionalProperties"), dict):
        values = dict(schema["additionalProperties"])
        schema["additionalProperties"] = _single_rules(rules.values, values, value, False)


def _single_rules(
    rules: validate_pb2.FieldRules, schema: Schema, field: FieldDescriptor, zero_ok: bool
) -> Schema:
    kind = rules.WhichOneof("type")
    if kind == "string":
        _string_rules(rules.string, schema, zero_ok)
    elif kind in _JSON_NUMBER_RULES:
        _number_rules(getattr(rules, kind), schema, zero_ok)
    elif kind in _JSON_STRING_INTEGER_RULES:
        _string_integer_rules(getattr(rules, kind), schema, zero_ok)
    elif kind == "enum":
        return _enum_rules(rules.enum, schema, field, zero_ok)
    return schema


def _string_rules(rules: validate_pb2.StringRules, schema: Schema, zero_ok: bool) -> None:
    if rules.HasField("const"):
        schema["const"] = rules.const
    if rules.HasField("len"):
        schema["maxLength"] = rules.len
        if not zero_ok:
            schema["minLength"] = rules.len
    if rules.HasField("min_len") and not zero_ok:
        schema["minLength"] = rules.min_len
    if rules.HasField("max_len"):
        schema["maxLength"] = rules.max_len
    patterns = []
    if rules.HasField("pattern"):
        patterns.append(rules.pattern)
    if rules.HasField("prefix"):
        patterns.append("^" + _escape(rules.prefix))
    if rules.HasField("suffix"):
        patterns.append(_escape(rules.suffix) + "$")
    if rules.HasField("contains"):
        patterns.append(_escape(rules.contains))
    if len(patterns) == 1:
        schema["pattern"] = f"^$|{patterns[0]}" if zero_ok else patterns[0]
    elif patterns:
        # One pattern per rule, all of which must match.
        lookaheads = "".join(f"(?=.*?(?:{p}))" for p in patterns)
        schema["pattern"] = f"^$|^{lookaheads}" if zero_ok else f"^{lookaheads}"
    if getattr(rules, _IN):
        schema["enum"] = [*([""] if zero_ok else []), *getattr(rules, _IN)]
    for name, format_name in _STRING_FORMATS.items():
        if rules.WhichOneof("well_known") == name and getattr(rules, name):
            schema["format"] = format_name


def _escape(text: str) -> str:
    return "".join("\\" + ch if ch in r"\^$.|?*+()[]{}/" else ch for ch in text)


def _bounds(rules: Any) -> tuple[float | None, bool, float | None, bool]:
    """(lower, lower exclusive, upper, upper exclusive) of a numeric rule set."""
    lower: float | None = None
    upper: float | None = None
    lower_exclusive = upper_exclusive = False
    greater = rules.WhichOneof("greater_than")
    if greater is not None:
        lower, lower_exclusive = getattr(rules, greater), greater == "gt"
    less = rules.WhichOneof("less_than")
    if less is not None:
        upper, upper_exclusive = getattr(rules, less), less == "lt"
    if lower is not None and upper is not None and lower > upper:
        return None, False, None, False  # protovalidate's "outside the range": not carried
    return lower, lower_exclusive, upper, upper_exclusive


def _admits_zero(lower: float | None, lower_ex: bool, upper: float | None, upper_ex: bool) -> bool:
    above = lower is None or (lower < 0 if lower_ex else lower <= 0)
    below = upper is None or (upper > 0 if upper_ex else upper >= 0)
    return above and below


def _number_rules(rules: Any, schema: Schema, zero_ok: bool) -> None:
    if rules.HasField("const"):
        schema["const"] = rules.const
    lower, lower_ex, upper, upper_ex = _bounds(rules)
    if zero_ok and not _admits_zero(lower, lower_ex, upper, upper_ex):
        return
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        schema.pop(key, None)
    if lower is not None:
        schema["exclusiveMinimum" if lower_ex else "minimum"] = lower
    if upper is not None:
        schema["exclusiveMaximum" if upper_ex else "maximum"] = upper
    allowed = list(getattr(rules, _IN))
    if allowed:
        schema["enum"] = [*([0] if zero_ok else []), *allowed]


def _string_integer_rules(rules: Any, schema: Schema, zero_ok: bool) -> None:
    """64-bit integers travel as JSON strings: the range is a sentence, and a range
    without negatives also a digits-only pattern."""
    lower, lower_ex, upper, upper_ex = _bounds(rules)
    if rules.HasField("const"):
        schema["const"] = str(rules.const)
    allowed = [str(value) for value in getattr(rules, _IN)]
    if allowed:
        schema["enum"] = [*(["0"] if zero_ok else []), *allowed]
    if zero_ok and not _admits_zero(lower, lower_ex, upper, upper_ex):
        return
    if lower is not None and (lower >= 0 or (lower_ex and lower >= -1)):
        schema["pattern"] = "^[0-9]+$"
    parts = []
    if lower is not None:
        parts.append(f"{'more than' if lower_ex else 'at least'} {lower}")
    if upper is not None:
        parts.append(f"{'less than' if upper_ex else 'at most'} {upper}")
    if parts:
        note = f"An integer {' and '.join(parts)} (a JSON string)."
        schema["description"] = f"{schema.get('description', '')}\n\n{note}".strip()


def _enum_rules(
    rules: validate_pb2.EnumRules, schema: Schema, field: FieldDescriptor, zero_ok: bool
) -> Schema:
    """`in`/`not_in` narrow the enum's names (inline, the shared enum schema stays
    whole); `defined_only` is what the enum schema says already."""
    allowed = set(getattr(rules, _IN))
    refused = set(rules.not_in)
    if not allowed and not refused:
        return schema
    values = enum_type(field).values
    names = [
        value.name
        for value in values
        if (not allowed or value.number in allowed or (zero_ok and value.number == 0))
        and value.number not in refused
    ]
    narrowed: Schema = {"type": "string", "enum": names}
    if "description" in schema:
        narrowed["description"] = schema["description"]
    return narrowed
