"""Fixtures for every test: the real OpenAI-compatible test server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.openai_test_server import OpenAITestServer


@pytest.fixture
def openai_server() -> Iterator[OpenAITestServer]:
    """A running OpenAITestServer on 127.0.0.1, stopped after the test."""
    server = OpenAITestServer().start()
    try:
        yield server
    finally:
        server.stop()
