"""Machine-readable output: `--output json` (or `--json`) on every command that
prints data. Messages become JSON through protobuf's `json_format` with the API's
field names (lowerCamelCase, as the REST gateway writes them), fields at their
default value included so a script always finds the same keys; lists are
`{"items": [...], "nextPageToken": "..."}`. One JSON document on stdout, nothing
else there (progress and warnings go to stderr or are left out)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cli.choices import OutputFormat

if TYPE_CHECKING:
    from google.protobuf.message import Message


def wants_json(output: OutputFormat, json_flag: bool) -> bool:
    """Whether `--output json` or `--json` was given."""
    return json_flag or output is OutputFormat.json


def message_dict(message: Message) -> dict[str, Any]:
    """A message as the API's JSON object (defaults included)."""
    from google.protobuf import json_format

    found: dict[str, Any] = json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True
    )
    return found


def items(messages: Iterable[Message], next_page_token: str = "") -> dict[str, Any]:
    """The JSON shape of a list of resources."""
    return {"items": [message_dict(m) for m in messages], "nextPageToken": next_page_token}


def print_json(document: Any) -> None:
    """Writes one JSON document (indented, keys in the API's order) to stdout."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
