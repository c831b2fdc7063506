"""The answers streaming in each session, as far as they got: what a reconnecting client missed.

Every process sees every session's events (its own and, through the broadcaster, every other
replica's), so each keeps the text of the answers in progress from the ``chunk`` events it
delivers, until their ``complete`` or ``error``. A client that joins a session mid-answer
(for example after its socket dropped) is first sent that text as one ``chunk`` with
``resumed: true``, then the live chunks: the connection manager sends the replay with no await
between registering the client and sending it, so nothing is missed or sent twice. A client
that appends every ``chunk``'s ``content`` (the seed's ``appendToMessage(data.content)``) ends
up with exactly the whole answer.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from core.chat.connections import encode

# The event types that start, extend or end an answer's stream (JSON texts start with these).
_PREFIXES = tuple(
    f'{{"type":"{kind}"' for kind in ("chunk", "complete", "error", "session_deleted")
)
# An answer not heard of for this long is forgotten (its process died before it ended).
STALE_AFTER_SECONDS = 600.0


@dataclass
class _Answer:
    pieces: list[str] = field(default_factory=list)
    heard_at: float = field(default_factory=time.monotonic)


class AnswerStreams:
    def __init__(self, *, stale_after: float = STALE_AFTER_SECONDS) -> None:
        self._stale_after = stale_after
        # session -> reply_to (the question's message id) -> the answer so far
        self._answers: dict[int, dict[int, _Answer]] = {}

    def observe(self, session_id: int, text: str) -> None:
        """Follow one delivered event (a ``ConnectionManager`` observer)."""
        if not text.startswith(_PREFIXES):
            return
        event = json.loads(text)
        kind = event["type"]
        if kind == "session_deleted":
            self._answers.pop(session_id, None)
            return
        reply_to = event.get("reply_to")
        if not isinstance(reply_to, int):
            return  # an error about something else than an answer
        answers = self._answers.setdefault(session_id, {})
        if kind == "chunk":
            if event.get("resumed"):
                return  # a replay sent to one client, never broadcast: nothing new
            if reply_to not in answers:
                self._forget_stale()
                answers = self._answers.setdefault(session_id, {})
            answer = answers.setdefault(reply_to, _Answer())
            answer.pieces.append(str(event.get("content", "")))
            answer.heard_at = time.monotonic()
            return
        answers.pop(reply_to, None)  # complete or error: the stream is over
        if not answers:
            self._answers.pop(session_id, None)

    def replay(self, session_id: int) -> list[str]:
        """What a client joining ``session_id`` now missed: one ``chunk`` per answer in
        progress, with its text so far."""
        return [
            encode(
                {
                    "type": "chunk",
                    "session_id": session_id,
                    "reply_to": reply_to,
                    "content": "".join(answer.pieces),
                    "resumed": True,
                }
            )
            for reply_to, answer in self._answers.get(session_id, {}).items()
        ]

    def in_progress(self, session_id: int) -> dict[int, str]:
        """The text so far of each answer streaming in the session, by ``reply_to``."""
        return {
            reply_to: "".join(answer.pieces)
            for reply_to, answer in self._answers.get(session_id, {}).items()
        }

    def _forget_stale(self) -> None:
        cutoff = time.monotonic() - self._stale_after
        for session_id, answers in list(self._answers.items()):
            for reply_to, answer in list(answers.items()):
                if answer.heard_at < cutoff:
                    del answers[reply_to]
            if not answers:
                del self._answers[session_id]
