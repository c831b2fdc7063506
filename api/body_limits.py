"""A cap on request bodies, enforced while they arrive: a huge JSON body is refused with 413
``request_too_large`` before it is read into memory. The upload route streams to disk under
its own, larger cap (``max_upload_bytes``) and is left alone here."""

from __future__ import annotations

from collections.abc import Collection

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response


class RequestTooLargeError(HTTPException):
    error_code = "request_too_large"

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body is larger than the {max_bytes:,}-byte limit.")


class RequestSizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int, exempt: Collection[str] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            refused = RequestTooLargeError(self.max_bytes)
            response = error_response(413, refused.error_code, refused.detail)
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises an HTTPException from reading the body; the handler
                    # renders it as the envelope.
                    raise RequestTooLargeError(self.max_bytes)
            return message

        await self.app(scope, limited, send)
