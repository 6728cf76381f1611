"""Content validation and the Session/Message types."""

from __future__ import annotations

import base64
import binascii
import itertools
import random

import pytest

from chatdesk.domain import (
    Message,
    Session,
    decode_base64,
    encode_base64,
    is_image_mime,
    parse_content,
    sniff_image_format,
    validate_content,
)
from tests.core.conftest import make_png, png_data_url


def test_string_and_valid_blocks_pass() -> None:
    validate_content("hello")
    validate_content(
        [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": png_data_url()}},
            {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}},
        ]
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([{"type": "audio", "data": "x"}], r"block 0: unknown block type 'audio'"),
        ([{"text": "no type"}], r"block 0: missing field 'type'"),
        ([{"type": "text"}], r"block 0 \(text\): missing field 'text'"),
        (
            [{"type": "text", "text": "ok"}, {"type": "image_url"}],
            r"block 1 \(image_url\): missing field 'image_url'",
        ),
        ([{"type": "image_url", "image_url": {}}], r"block 0 \(image_url\): missing field"),
        (
            [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@not base64@@"}}],
            r"block 0 \(image_url\): the base64 image data does not decode",
        ),
        (
            [
                {
                    "type": "image_url",
                    "image_url": {
                        "url": "data:image/png;base64," + base64.b64encode(b"hello").decode()
                    },
                }
            ],
            r"block 0 \(image_url\): the data is not a recognisable image",
        ),
        ([{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}], r"block 0"),
        ([], "empty list"),
        (42, "must be a string or a list"),
        (["just a string"], r"block 0: expected an object"),
    ],
)
def test_invalid_content_names_the_block_and_the_problem(content: object, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        validate_content(content)


def test_unknown_role_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown role 'robot'"):
        Message.create("robot", "hi")


def test_every_session_gets_its_own_history_list() -> None:
    first, second = Session(), Session()
    first.add_message(Message.create("user", "only in first"))
    assert first.history is not second.history
    assert second.history == []
    assert first.message_count == 1


def test_message_create_copies_block_lists() -> None:
    blocks = [{"type": "text", "text": "original"}]
    message = Message.create("user", blocks)
    blocks[0]["text"] = "changed by the caller"
    assert message.content == [{"type": "text", "text": "original"}]


def test_sniff_recognises_real_images_only() -> None:
    assert sniff_image_format(make_png()) == "png"
    assert sniff_image_format(b"\xff\xd8\xff\xe0rest") == "jpeg"
    assert sniff_image_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_image_format(b"plain text") is None


def test_context_puts_the_system_prompt_first() -> None:
    session = Session(system_prompt="Be brief.")
    session.add_message(Message.create("user", [{"type": "text", "text": "hi"}]))
    assert session.context_messages() == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    ]


def _strict_b64decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _sliced_decode(text: str, slice_chars: int) -> bytes | None:
    try:
        return decode_base64(text, slice_chars=slice_chars)
    except ValueError:
        return None


def test_sliced_base64_decoding_accepts_and_rejects_exactly_what_b64decode_does() -> None:
    # Tiny slices, so every way padding and bad characters can fall across slices is met.
    texts = ["".join(t) for n in range(11) for t in itertools.product("AQ=", repeat=n)]
    rng = random.Random(5)
    alphabet = "AQg+/=\n é_-"
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(17))) for _ in range(3000)]
    texts += [base64.b64encode(rng.randbytes(n)).decode() for n in range(40)]
    for text in texts:
        expected = _strict_b64decode(text)
        for slice_chars in (4, 8, 1 << 20):
            assert _sliced_decode(text, slice_chars) == expected, (text, slice_chars)


def test_sliced_base64_encoding_is_b64encode() -> None:
    rng = random.Random(6)
    for n in range(50):
        data = rng.randbytes(n)
        for slice_bytes in (3, 6, 3 << 18):
            assert encode_base64(data, slice_bytes=slice_bytes) == base64.b64encode(data).decode()
    big = rng.randbytes(3_000_001)
    assert decode_base64(encode_base64(big)) == big
    assert encode_base64(big) == base64.b64encode(big).decode()


def test_parse_content_returns_each_decoded_image_by_block_index() -> None:
    png = make_png()
    content = [
        {"type": "text", "text": "two pictures"},
        {"type": "image_url", "image_url": {"url": png_data_url()}},
        {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}},
        {"type": "image_url", "image_url": {"url": png_data_url(rgb=(0, 0, 0))}},
    ]
    parsed = parse_content(content)
    assert sorted(parsed) == [1, 3]
    assert (parsed[1].mime, parsed[1].data) == ("image/png", png)
    assert parse_content("plain text") == {}
    with pytest.raises(ValueError, match="block 1"):
        parse_content([{"type": "text", "text": "ok"}, {"type": "video"}])


def test_is_image_mime() -> None:
    assert is_image_mime("image/png") and is_image_mime("image/svg+xml")
    assert not is_image_mime("text/html")
    assert not is_image_mime("image/png;base64,")
    assert not is_image_mime("image/")
