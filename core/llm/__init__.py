"""Chat-model backends (embedded llama.cpp, Ollama, OpenAI-compatible) behind one interface.

Importing this package loads no model and no native library; the embedded model loads on its
first generation.
"""

from core.llm.base import ChatModel, ChatTurn, Role
from core.llm.errors import GenerationError, ModelNotAvailableError, UnknownModelError
from core.llm.registry import ModelRegistry

__all__ = [
    "ChatModel",
    "ChatTurn",
    "GenerationError",
    "ModelNotAvailableError",
    "ModelRegistry",
    "Role",
    "UnknownModelError",
]
