"""Answer modes: what a client asks for, and what the service then does with the model it has.

``extractive`` quotes the documents and never calls a model. ``generative`` lets the model
write; ``auto`` (the default) does what each model is good for. A small embedded model
(llama.cpp, SmolLM2-135M) cannot carry a fact on its own, so whatever it writes is framed by
the document's own sentences: after them in ``auto``, before them in ``generative``. A model
served by Ollama or an OpenAI-compatible server writes the answer from the numbered sources.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from core.llm import ChatModel

AnswerMode = Literal["auto", "extractive", "generative"]
Confidence = Literal["high", "low", "none"]

# Backends whose models run on this machine's CPU and are too small to be trusted with facts.
EMBEDDED_BACKENDS = frozenset({"llama_cpp"})


class Plan(StrEnum):
    NOT_FOUND = "not_found"  # documents searched, nothing relevant: say so, no model call
    QUOTES = "quotes"  # the best sentences, verbatim, no model call
    QUOTES_THEN_FRAMING = "quotes_then_framing"  # embedded auto: quotes, one checked sentence
    MODEL_THEN_QUOTES = "model_then_quotes"  # embedded generative: checked text, then quotes
    MODEL = "model"  # a strong model writes from the numbered sources; markers checked
    PLAIN = "plain"  # no documents searched: the model answers (repetition guard only)

    @property
    def calls_model(self) -> bool:
        return self not in (Plan.NOT_FOUND, Plan.QUOTES)


def is_embedded(model: ChatModel) -> bool:
    return model.backend in EMBEDDED_BACKENDS


def plan(
    mode: AnswerMode, model: ChatModel, *, use_documents: bool, found: bool, confident: bool
) -> Plan:
    """``found``: some passage is relevant; ``confident``: the best one answers it well."""
    if not use_documents:
        return Plan.PLAIN
    if not found:
        return Plan.NOT_FOUND
    if mode == "extractive":
        return Plan.QUOTES
    if is_embedded(model):
        if mode == "auto":
            # Framing weak passages would only dress them up: they are shown as they are.
            return Plan.QUOTES_THEN_FRAMING if confident else Plan.QUOTES
        return Plan.MODEL_THEN_QUOTES
    return Plan.MODEL
