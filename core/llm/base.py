"""The one interface every chat-model backend implements, and the turn type they all take."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

from core.errors import InvalidInputError

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatTurn:
    role: Role
    content: str


def turns_as_messages(turns: list[ChatTurn]) -> list[dict[str, str]]:
    """The ``{"role", "content"}`` list that llama.cpp, Ollama and OpenAI all accept."""
    return [{"role": turn.role, "content": turn.content} for turn in turns]


def check_max_tokens(max_tokens: int) -> None:
    # llama.cpp reads max_tokens <= 0 as "until the context is full", never what a caller means.
    if max_tokens < 1:
        raise InvalidInputError(f"max_tokens must be at least 1, got {max_tokens}.")


class ChatModel(Protocol):
    """A chat model the service can stream an answer from.

    ``stream`` raises only ``ModelNotAvailableError`` (the model cannot be reached or loaded)
    or ``GenerationError`` (it failed while answering); closing the iterator early stops the
    generation.
    """

    name: str
    backend: str
    description: str

    async def available(self) -> bool:
        """Whether a request would reach the model now; never raises."""
        ...

    def stream(self, turns: list[ChatTurn], *, max_tokens: int) -> AsyncIterator[str]:
        """Stream the assistant's answer to ``turns`` as text pieces."""
        ...

    async def aclose(self) -> None:
        """Release connections or memory the backend holds."""
        ...
