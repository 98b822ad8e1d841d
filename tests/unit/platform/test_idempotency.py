"""The one rule that tells an idempotent replay from a reused request id."""

from __future__ import annotations

import hashlib

import pytest
from google.protobuf import struct_pb2

from services.platform.errors import AlreadyExists
from services.platform.idempotency import ensure_replay, request_digest, same_request


def test_mappings_digest_their_canonical_json_regardless_of_key_order() -> None:
    assert request_digest({"b": 1, "a": [1, 2]}) == request_digest({"a": [1, 2], "b": 1})
    assert request_digest({"a": 1}) == hashlib.sha256(b'{"a":1}').digest()
    assert request_digest({"a": 1}) != request_digest({"a": 2})


def test_messages_digest_their_deterministic_encoding() -> None:
    message = struct_pb2.Struct()
    message.update({"x": 1, "y": "z"})
    assert (
        request_digest(message)
        == hashlib.sha256(message.SerializeToString(deterministic=True)).digest()
    )


def test_stored_digests_compare_as_bytes_or_hex_text() -> None:
    digest = request_digest({"a": 1})
    assert same_request(digest, digest)
    assert same_request(memoryview(digest), digest)
    assert same_request(digest.hex(), digest)
    assert not same_request(None, digest)
    assert not same_request(request_digest({"a": 2}), digest)


def test_a_reused_id_is_already_exists_with_the_key_in_its_metadata() -> None:
    digest = request_digest({"a": 1})
    ensure_replay(digest, digest, "request_id", "r1", "a different task")
    with pytest.raises(AlreadyExists) as caught:
        ensure_replay(b"other", digest, "request_id", "r1", "a different task", metadata={"n": "x"})
    assert str(caught.value) == "request_id 'r1' was used for a different task"
    assert caught.value.reason == "REQUEST_ID_REUSED"
    assert caught.value.metadata == {"request_id": "r1", "n": "x"}
