"""Chat over the documents: sessions and messages, answers, real-time fan-out.

Module rules: ``tables``/``store`` are persistence only; ``prompt`` knows nothing of sessions;
``answers`` ties retrieval (``core.search.retrieval``) to the chat models; ``relay`` shows an
answer to its whole session; ``socket_client`` handles one WebSocket client's frames;
``broadcast`` (the interface), ``broadcasters`` (the choice), ``pg_broadcast`` and
``connections`` move JSON between processes and sockets and know nothing of chat itself.
"""
