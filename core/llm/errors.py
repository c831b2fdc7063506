"""Typed failures of the chat-model layer, rendered by the service's one error handler."""

from __future__ import annotations

from core.errors import AppError, NotFoundError


class UnknownModelError(NotFoundError):
    """The client asked for a model name this service is not configured with."""

    error_code = "unknown_model"


class ModelNotAvailableError(AppError):
    """The model is configured but cannot be reached or loaded right now; retrying may help."""

    error_code = "model_not_available"
    status_code = 503


class GenerationError(AppError):
    """The model's server was reached but failed, or broke off, while answering."""

    error_code = "llm_generation_failed"
    status_code = 502
