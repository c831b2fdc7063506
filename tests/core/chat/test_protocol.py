"""Client frames: each parses to its type, or fails with a precise typed error."""

from __future__ import annotations

import pytest

from core.chat.protocol import (
    ChatFrame,
    FrameValidationError,
    InvalidJSONError,
    TypingFrame,
    UnknownMessageTypeError,
    parse_frame,
)


def test_frames_parse_to_their_types() -> None:
    typing = parse_frame('{"type": "typing", "user_id": " ann ", "is_typing": true}')
    assert typing == TypingFrame(type="typing", user_id="ann", is_typing=True)
    chat = parse_frame('{"type": "chat_message", "question": "Why?"}')
    assert isinstance(chat, ChatFrame)
    assert (chat.question, chat.model, chat.search_mode) == ("Why?", None, "all")
    only = parse_frame('{"type": "chat_message", "question": "q", "search_mode": ["a", "b"]}')
    assert isinstance(only, ChatFrame) and only.search_mode == ["a", "b"]
    assert chat.retrieval is None  # the retrieval_mode setting decides
    keyword = parse_frame('{"type": "chat_message", "question": "q", "retrieval": "keyword"}')
    assert isinstance(keyword, ChatFrame) and keyword.retrieval == "keyword"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("nope", InvalidJSONError),
        ('"a string"', FrameValidationError),
        ("{}", FrameValidationError),
        ('{"type": 3}', UnknownMessageTypeError),
        ('{"type": "shout"}', UnknownMessageTypeError),
        ('{"type": "typing", "is_typing": true}', FrameValidationError),
        ('{"type": "typing", "user_id": "a", "is_typing": "maybe"}', FrameValidationError),
        ('{"type": "chat_message", "question": ""}', FrameValidationError),
        ('{"type": "chat_message", "question": "q", "search_mode": []}', FrameValidationError),
        ('{"type": "chat_message", "question": "q", "retrieval": "bm25"}', FrameValidationError),
    ],
)
def test_bad_frames_raise_typed_errors(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_frame(text)


def test_a_bad_retrieval_names_the_field_and_the_choices() -> None:
    with pytest.raises(FrameValidationError) as refused:
        parse_frame('{"type": "chat_message", "question": "q", "retrieval": "fuzzy"}')
    [error] = refused.value.details["errors"]
    assert error["field"] == "retrieval"
    assert all(mode in error["message"] for mode in ("hybrid", "dense", "keyword"))
