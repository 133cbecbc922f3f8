"""The HTTP server's own limits for `leadbot run --http`: slow and idle connections are closed, and concurrent
connections are capped below the file-descriptor limit, so a few slow or many idle clients cannot starve Slack's
requests and /healthz. (A proxy in front should set the same limits: see README, "Running it".)"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

#: A request (its headers and its body) must arrive within this many seconds of the connection or of the previous
#: response; Slack sends a few KB at once, so only a stalled or hostile client takes longer.
REQUEST_ARRIVAL_TIMEOUT_S = 10.0
#: An idle keep-alive connection is closed after this many seconds.
KEEP_ALIVE_TIMEOUT_S = 5
#: Descriptors kept free for everything else the process opens (the audit file, babelforce and Slack connections).
DESCRIPTORS_RESERVED = 256
#: At most this many connections at once (or fewer, when the descriptor limit is lower); beyond it uvicorn answers 503.
MAX_CONNECTIONS = 1000
#: How often the "connection limit reached" warning may repeat.
FULL_WARNING_EVERY_S = 60.0


def connection_limit(wanted: int = MAX_CONNECTIONS) -> int:
    """`wanted`, lowered to stay below the process's descriptor limit (each connection is one descriptor)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(16, min(wanted, soft - DESCRIPTORS_RESERVED))


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline for each request to arrive in full, and a warning when the
    connection limit is reached (uvicorn itself answers 503 then, silently)."""

    arrival_timeout: float = REQUEST_ARRIVAL_TIMEOUT_S
    _last_full_warning = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._arrival: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limit = self.limit_concurrency
        if limit is not None and len(self.connections) >= limit:
            now = time.monotonic()
            if now - DeadlineProtocol._last_full_warning > FULL_WARNING_EVERY_S:
                DeadlineProtocol._last_full_warning = now
                log.warning("HTTP connection limit reached (%d): new requests get 503 until connections close", limit)
        self._start_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._arrival is None:  # a keep-alive connection's next request
            self._start_deadline()

    def on_message_complete(self) -> None:
        self._cancel_deadline()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _start_deadline(self) -> None:
        self._cancel_deadline()
        self._arrival = self.loop.call_later(self.arrival_timeout, self._too_slow)

    def _cancel_deadline(self) -> None:
        if self._arrival is not None:
            self._arrival.cancel()
            self._arrival = None

    def _too_slow(self) -> None:
        self._arrival = None
        if not self.transport.is_closing():
            log.info("closed an HTTP connection whose request did not arrive within %.0f s", self.arrival_timeout)
            self.transport.close()


def server_options() -> dict[str, Any]:
    """uvicorn's settings for `leadbot run --http`."""
    return {
        "http": DeadlineProtocol,
        "timeout_keep_alive": KEEP_ALIVE_TIMEOUT_S,
        "limit_concurrency": connection_limit(),
    }
