"""A connection pool that stays cheap with many requests in flight.

httpcore's pool (under httpx) does work proportional to (queued requests x connections) and (idle connections x
connections) every time a request starts or ends; with 150 calls in flight that housekeeping took most of the
bot's CPU (measured with `python3 dev.py bench --profile-bot`). So the connections are split over several small
httpx transports ("shards"); each request goes to the least busy one, and the client hands out at most
`shards x per_shard` requests at once, so no shard ever queues. Smaller shards cost less per request (8 per shard
measured about 10% less CPU per command than 16).
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import AsyncIterator, Callable

import httpx


def default_ssl_context() -> ssl.SSLContext:
    """The SSL context every shard of every client in this process uses, made as an httpx transport would make its
    own (certifi's CA bundle, or SSL_CERT_FILE / SSL_CERT_DIR). Loading the bundle takes 30-50 ms: once per shard
    it was most of a client's construction. Shared safely: the shards are all HTTP/1.1, so httpcore sets the same
    ALPN protocols on it for every connection."""
    return _ssl_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.cache
def _ssl_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context()  # reads the same two variables itself


class _ReleasingStream(httpx.AsyncByteStream):
    """The response body; closing it (httpx does once the body is read) frees the shard's slot, exactly once."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class ShardedTransport(httpx.AsyncBaseTransport):
    """`shards` httpx transports of `per_shard` keep-alive connections each; a request goes to the least busy."""

    def __init__(self, shards: int, per_shard: int) -> None:
        if shards < 1 or per_shard < 1:
            raise ValueError("shards and per_shard must be at least 1")
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        ssl_context = default_ssl_context()
        self._shards = [httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits) for _ in range(shards)]
        self._busy = [0] * shards
        self.capacity = shards * per_shard  # requests in flight without any shard queueing

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        shard = min(range(len(self._shards)), key=self._busy.__getitem__)
        self._busy[shard] += 1

        def release() -> None:
            self._busy[shard] -= 1

        try:
            response = await self._shards[shard].handle_async_request(request)
        except BaseException:
            release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _ReleasingStream(response.stream, release)
        return response

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()
