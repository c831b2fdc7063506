"""Which broadcaster a process uses: PostgreSQL ``LISTEN/NOTIFY`` (``core.chat.pg_broadcast``)
when ``DOCCHAT_BROADCAST_URL`` is set, this process alone otherwise."""

from __future__ import annotations

from core.chat.broadcast import Broadcaster, LocalBroadcaster


def broadcaster_for(url: str | None) -> Broadcaster:
    """The broker of ``DOCCHAT_BROADCAST_URL``, or this process alone when it is unset."""
    if url is None:
        return LocalBroadcaster()
    # psycopg only when it is used.
    from core.chat.pg_broadcast import PostgresBroadcaster

    return PostgresBroadcaster(url)
