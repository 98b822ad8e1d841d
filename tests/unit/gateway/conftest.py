"""Unit tests need the test protos' descriptors (no servers)."""

from __future__ import annotations

import pytest

from tests.integration.gateway.harness import Compiled, compile_test_protos


@pytest.fixture(scope="session")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    return compile_test_protos(tmp_path_factory.mktemp("gatewaytest"))
