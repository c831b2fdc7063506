"""Everything chat needs in a running API process, started and stopped with it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from core.chat.answer_streams import AnswerStreams
from core.chat.answers import AnswerService
from core.chat.broadcast import Broadcaster
from core.chat.connections import ConnectionManager
from core.chat.sessions import Sessions
from core.chat.task_progress import TaskSource, TaskWatchers
from core.chat.typing_indicators import TypingIndicators
from core.llm import ModelRegistry
from core.runtime import Resources


class ChatService:
    def __init__(
        self,
        resources: Resources,
        models: ModelRegistry,
        *,
        broadcaster: Broadcaster | None = None,
        tasks: TaskSource | None = None,
    ) -> None:
        """``tasks`` (the ingestion service) feeds ``task_progress`` to sessions that ask."""
        settings = resources.settings
        self.resources = resources
        self.models = models
        self.connections = ConnectionManager(
            broadcaster,
            queue_size=settings.ws_send_queue_size,
            ping_interval=settings.ws_ping_interval_seconds,
            max_per_session=settings.ws_max_connections_per_session,
            max_total=settings.ws_max_connections,
        )
        # What a client joining mid-answer missed: sent to it before the live chunks.
        self.answer_streams = AnswerStreams()
        self.connections.observe(self.answer_streams.observe)
        self.connections.on_join(self.answer_streams.replay)
        self.typing = TypingIndicators(
            resources.engine, self.connections, ttl=settings.typing_ttl_seconds
        )
        self.answers = AnswerService(resources, models)
        self.task_watchers = TaskWatchers(self.connections, tasks)
        self.sessions = Sessions(resources.engine, self.connections, self.cancel_answers)
        # Answers started from a WebSocket outlive the asker's connection: the session's other
        # clients are watching them. They are cancelled when the process stops.
        self._answering: dict[asyncio.Task[None], int] = {}  # answer → its session

    async def start(self) -> None:
        await self.connections.start()
        self.typing.start()

    async def stop(self) -> None:
        for task in list(self._answering):
            task.cancel()
        await asyncio.gather(*self._answering, return_exceptions=True)
        await self.task_watchers.stop()
        await self.typing.stop()
        await self.connections.stop()

    def spawn(self, coroutine: Coroutine[Any, Any, None], *, session_id: int) -> asyncio.Task[None]:
        """Run an answer in the background, on behalf of the whole session."""
        task = asyncio.create_task(coroutine, name=f"chat-answer-{session_id}")
        self._answering[task] = session_id
        task.add_done_callback(lambda done: self._answering.pop(done, None))
        return task

    async def cancel_answers(self, session_id: int) -> None:
        """Stop the session's answers in progress (each tells the session it was stopped)."""
        answers = [task for task, owner in self._answering.items() if owner == session_id]
        for task in answers:
            task.cancel()
        await asyncio.gather(*answers, return_exceptions=True)
