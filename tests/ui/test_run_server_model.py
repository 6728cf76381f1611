"""A server given for this run only (``--base-url`` without ``--model``): the model
selector names the model that answers, not "default model"."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from chatdesk.providers.registry import short_model_name
from tests.openai_test_server import OpenAITestServer
from tests.ui.harness import Harness, wait_for


def test_the_selector_names_the_first_model_of_a_server_given_without_one(
    harness: Harness, openai_server: OpenAITestServer, qtbot: QtBot
) -> None:
    openai_server.models = ["/models/SmolLM2-135M-Instruct.Q4_1.gguf"]
    harness.model = None
    window = harness.window()
    selector = window.pane.model_selector
    expected = f"SmolLM2-135M-Instruct.Q4_1.gguf — {openai_server.base_url}"
    wait_for(qtbot, lambda: selector.currentText() == expected)
    assert "default model" not in selector.currentText()
    # It is the model that answers.
    task = window.send_text("Hello")
    assert task is not None
    wait_for(qtbot, task.done)
    assert openai_server.requests[-1]["model"] == "/models/SmolLM2-135M-Instruct.Q4_1.gguf"


def test_model_names_are_shortened_only_when_they_are_file_paths() -> None:
    assert short_model_name("/srv/models/qwen2.5-7b.gguf") == "qwen2.5-7b.gguf"
    assert short_model_name("meta-llama/Llama-3.1-8B-Instruct") == (
        "meta-llama/Llama-3.1-8B-Instruct"
    )
    assert short_model_name("llama3.2:latest") == "llama3.2:latest"
