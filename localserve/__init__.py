"""Any ASGI app on uvicorn, on a loopback port: in a background thread (`BackgroundServer`) or in the foreground
(`serve_in_foreground`).

Generic on purpose: the babelforce sandbox, the Slack stand-in and the console's bot server all use it, and none of
them owns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import LifespanType

START_TIMEOUT_S = 10.0

__all__ = ["START_TIMEOUT_S", "BackgroundServer", "base_url_of", "bind_socket", "serve_in_foreground"]


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind (and listen) ourselves, so port 0 gives a free port we know before uvicorn starts.

    The socket is created with proto=IPPROTO_TCP on purpose: asyncio only sets TCP_NODELAY on accepted sockets
    whose proto says TCP, and without it every keep-alive response waits ~40 ms for a delayed ACK.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if hasattr(socket, "SO_REUSEADDR") and port != 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def base_url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host in {"0.0.0.0", "::"}:
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _PromptServer(uvicorn.Server):
    """uvicorn.Server that wakes up at once when asked to exit, instead of at its next 0.1 s tick.

    Tests start and stop a sandbox per test, so the tick showed up in the suite's run time. Same loop as
    uvicorn's `main_loop`, with the sleep replaced by a wait on an event that `request_exit` sets.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    def request_exit(self) -> None:
        """Thread-safe: ask the server to shut down now."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed: nothing to wake
                loop.call_soon_threadsafe(wake.set)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's `shutdown` without its fixed 0.1 s pause after asking connections to close: open connections
        and tasks are polled every 5 ms instead (same graceful timeout, then the same cancelling, then lifespan).
        A bot under test stops three servers, so the pause was 0.3 s of every test that starts one."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        try:
            await asyncio.wait_for(self._connections_and_tasks_done(), self.config.timeout_graceful_shutdown)
        except TimeoutError:
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _connections_and_tasks_done(self) -> None:
        while (self.server_state.connections or self.server_state.tasks) and not self.force_exit:
            await asyncio.sleep(0.005)


def _uvicorn_config(app: ASGIApp, log_level: str, http: str = "h11", lifespan: LifespanType = "off") -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=http,
        lifespan=lifespan,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
    )


class BackgroundServer:
    """Any ASGI app on a loopback port (free by default), served by uvicorn in a background thread.

    Use as a context manager, or `.start()` / `.stop()`. `.base_url` is known once started.
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        http: str = "h11",
        name: str = "server",
        lifespan: LifespanType = "off",
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.log_level = log_level
        self.http = http
        self.name = name
        self._server = _PromptServer(_uvicorn_config(app, log_level, http, lifespan))
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.base_url = ""

    def start(self) -> Self:
        """Start serving; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._socket = bind_socket(self.host, self.port)
        self.base_url = base_url_of(self._socket)
        self._thread = threading.Thread(target=self._run, name=f"{self.name} {self.base_url}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"{self.name} server failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} server did not start within {START_TIMEOUT_S} s")
            time.sleep(0.005)
        return self

    def _run(self) -> None:
        assert self._socket is not None
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # reported by start() or stop(); a thread cannot raise to its creator
            self._error = exc
            raise

    def stop(self) -> None:
        """Stop serving and wait for the thread (idempotent)."""
        if self._thread is None:
            return
        self._server.request_exit()
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=5)
        self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_in_foreground(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    http: str = "h11",
    announce: Callable[[str], None] = print,
) -> None:
    """Serve `app` in this thread until Ctrl-C / SIGTERM. `announce(base_url)` runs once the port is bound."""
    sock = bind_socket(host, port)
    server = _PromptServer(_uvicorn_config(app, log_level, http=http))
    try:
        announce(base_url_of(sock))
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
