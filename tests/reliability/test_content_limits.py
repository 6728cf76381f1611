"""Content the core refuses with a clear message: unpaired surrogates, oversized images."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatdesk.domain import MAX_IMAGE_BYTES, Message, validate_content
from chatdesk.sessions import SessionManager
from tests.core.conftest import make_png


@pytest.mark.parametrize(
    "content",
    ["before \ud83d after", [{"type": "text", "text": "x\udc00"}], "\udfff"],
    ids=["high-half", "low-half-in-a-block", "alone"],
)
async def test_text_with_an_unpaired_surrogate_is_a_clear_value_error(
    manager: SessionManager, content: object
) -> None:
    session = await manager.create_session("Surrogates")
    with pytest.raises(ValueError, match="unpaired surrogate") as raised:
        await manager.add_message(session.id, "user", content)  # type: ignore[arg-type]
    assert not isinstance(raised.value, UnicodeError)
    assert "U+D" in str(raised.value)
    assert (await manager.require_session(session.id)).history == []


async def test_one_image_limit_in_the_core(manager: SessionManager) -> None:
    png = make_png()
    too_big = png + b"\0" * (MAX_IMAGE_BYTES + 1 - len(png))
    url = "data:image/png;base64," + base64.b64encode(too_big).decode()
    content = [{"type": "image_url", "image_url": {"url": url}}]
    session = await manager.create_session("Images")

    with pytest.raises(ValueError, match="images can be at most 20 MB"):
        await manager.add_message(session.id, "user", content)
    assert (await manager.require_session(session.id)).history == []

    from chatdesk.ui import attachments  # the composer checks the core limit, not its own

    assert attachments.MAX_IMAGE_BYTES is MAX_IMAGE_BYTES


@given(st.text())
def test_any_text_is_accepted_exactly_when_it_can_be_stored_as_utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(ValueError, match="unpaired surrogate"):
            validate_content(text)
        with pytest.raises(ValueError):
            Message.create("user", [{"type": "text", "text": text}])
    else:
        validate_content(text)
        assert Message.create("user", text).content == text
