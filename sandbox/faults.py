"""Injected faults and request counts, applied by the outermost ASGI layer so they can reach the raw connection.

A fault rule can delay a request, answer it with an error status (optionally with Retry-After) or with a body of
its own (e.g. a 200 carrying `"success": false`, or a text of any Content-Type: an HTML page, a CSV of another
shape), drop the connection before or after the app acted, trickle the response body so slowly that only an overall
deadline stops the client, or act and then leave fields out of the answer's items (e.g. hopper entries without `id`,
which the spec allows). The counts (per route template) let tests
assert how many requests a client really sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRICKLE_INTERVAL_S = 0.2
_RULE_KEYS = {
    "status",
    "body",
    "drop_fields",
    "retry_after",
    "latency_ms",
    "stall_s",
    "reset",
    "method",
    "path",
    "times",
    "act",
    "answer",
    "content_type",
}
#: What `body` replaces: the error body a simulated status answers with by default.
_NO_BODY: Any = object()
#: How a faulty answer reads: babelforce's own JSON error, a gateway's HTML page, or a 200 whose body is cut off.
ANSWERS = ("json", "gateway", "garbled")


def is_api_path(path: str) -> bool:
    """Requests that faults apply to and that are counted: the API and the token endpoint, not /sandbox/*."""
    return path.startswith("/api/v2/") or path == "/api/v2" or path == "/oauth/token"


def _number(rule: dict[str, Any], key: str, default: float | None) -> float | None:
    value = rule.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{key} must be a non-negative number.")
    return value


@dataclass(slots=True)
class FaultRule:
    status: int | None = None
    body: Any = _NO_BODY  # the JSON answered instead of {"success": false, "message": "Simulated <status>"}
    content_type: str | None = None  # with a text `body`: that text is answered as is, with this Content-Type
    drop_fields: tuple[str, ...] = ()  # act, then leave these keys out of the answer's `item` and `items`
    retry_after: float | None = None
    latency_ms: float = 0
    stall_s: float = 0
    reset: str | None = None
    method: str | None = None
    path: str | None = None
    times: int | None = 1  # None: unlimited
    act: bool = False  # with a status: the API acts first, then that status is answered in place of its own
    answer: str = "json"  # see ANSWERS; "garbled" always acts first
    pattern: re.Pattern[str] | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, rule: Any) -> FaultRule:
        """Build a rule from its JSON form; ValueError names the offending key."""
        if not isinstance(rule, dict):
            raise ValueError("Each fault rule must be a JSON object.")
        unknown = sorted(set(rule) - _RULE_KEYS)
        if unknown:
            raise ValueError(f"Unknown fault rule key: {unknown[0]}.")
        status = rule.get("status")
        body = rule.get("body", _NO_BODY)
        # Error statuses, or 200 with a body of the rule's own (a "success": false answer); never 1xx/204/304,
        # which cannot carry a body (h11 refuses them).
        allowed = "between 400 and 599, or 200 with a body" if body is not _NO_BODY else "between 400 and 599"
        if status is not None and (
            isinstance(status, bool)
            or not isinstance(status, int)
            or not (400 <= status <= 599 or (status == 200 and body is not _NO_BODY))
        ):
            raise ValueError(f"status must be an HTTP error status {allowed}.")
        if body is not _NO_BODY and status is None:
            raise ValueError("body needs a status to answer with.")
        content_type = rule.get("content_type")
        if content_type is not None and (not isinstance(content_type, str) or not content_type.strip()):
            raise ValueError("content_type must be a non-empty string.")
        if content_type is not None and not isinstance(body, str):
            raise ValueError("content_type needs a body that is a string (the text answered as is).")
        drop_fields = rule.get("drop_fields", [])
        if not isinstance(drop_fields, list) or not all(isinstance(name, str) and name for name in drop_fields):
            raise ValueError("drop_fields must be a list of field names.")
        reset = rule.get("reset")
        if reset not in (None, "before", "after"):
            raise ValueError('reset must be "before" or "after".')
        method = rule.get("method")
        if method is not None and (not isinstance(method, str) or not method):
            raise ValueError("method must be a non-empty string.")
        path = rule.get("path")
        pattern = None
        if path is not None:
            if not isinstance(path, str):
                raise ValueError("path must be a regular expression string.")
            try:
                pattern = re.compile(path)
            except re.error as exc:
                raise ValueError(f"path is not a valid regular expression: {exc}.") from exc
        act = rule.get("act", False)
        if not isinstance(act, bool):
            raise ValueError("act must be true or false.")
        answer = rule.get("answer", "json")
        if answer not in ANSWERS:
            raise ValueError(f"answer must be one of {', '.join(ANSWERS)}.")
        times = rule.get("times", 1)
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise ValueError("times must be a positive integer, or null for unlimited.")
        return cls(
            status=status,
            body=body,
            content_type=content_type,
            drop_fields=tuple(drop_fields),
            retry_after=_number(rule, "retry_after", None),
            latency_ms=_number(rule, "latency_ms", 0) or 0,
            stall_s=_number(rule, "stall_s", 0) or 0,
            reset=reset,
            method=method.upper() if method else None,
            path=path,
            times=times,
            act=act,
            answer=answer,
            pattern=pattern,
        )

    def to_json(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"status": self.status}
        if self.body is not _NO_BODY:
            rule["body"] = self.body
        if self.content_type is not None:
            rule["content_type"] = self.content_type
        if self.drop_fields:
            rule["drop_fields"] = list(self.drop_fields)
        return rule | {
            "retry_after": self.retry_after,
            "latency_ms": self.latency_ms,
            "stall_s": self.stall_s,
            "reset": self.reset,
            "method": self.method,
            "path": self.path,
            "times": self.times,
            "act": self.act,
            "answer": self.answer,
        }

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return self.pattern is None or self.pattern.search(path) is not None


class FaultBook:
    """The active fault rules, in the order they were added; exhausted rules drop out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rules: Any) -> list[dict[str, Any]]:
        """Append one rule object or a list of them (all validated before any is added)."""
        parsed = [FaultRule.from_json(rule) for rule in (rules if isinstance(rules, list) else [rules])]
        with self._lock:
            self._rules.extend(parsed)
        return self.snapshot()

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first rule matching the request, with one of its `times` used up."""
        with self._lock:
            for index, rule in enumerate(self._rules):
                if rule.matches(method, path):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times == 0:
                            del self._rules[index]
                    return rule
        return None


class RequestStats:
    """Counts of API requests received, keyed by "METHOD /route/{template}"."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def record(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"total": sum(self._counts.values()), "byRoute": dict(self._counts)}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


async def drop_connection(send: Send) -> None:
    """Reset the TCP connection under uvicorn (RST, not FIN) without answering.

    uvicorn's `send` is a bound method of its request/response cycle, which holds the asyncio transport.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("sandbox fault: no transport reachable from send; cannot drop the connection")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let uvicorn's connection_lost run now, so it does not try to answer the request with a 500 afterwards.
    await asyncio.sleep(0)


class FaultsMiddleware:
    """Outermost ASGI layer: counts API requests and applies the first matching fault rule."""

    def __init__(
        self,
        app: ASGIApp,
        faults: FaultBook,
        stats: RequestStats,
        route_template: Callable[[Scope], str | None],
    ) -> None:
        self.app = app
        self.faults = faults
        self.stats = stats
        self.route_template = route_template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        scope = _without_trailing_slash(scope)
        receive = await _received_whole(receive)
        method = scope["method"]
        self.stats.record(f"{method} {self.route_template(scope) or scope['path']}")
        rule = self.faults.take(method, scope["path"])
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.latency_ms > 0:
            await asyncio.sleep(rule.latency_ms / 1000)
        if rule.reset == "before":
            await drop_connection(send)
        elif rule.answer == "garbled":  # babelforce acted and said 200, but the body arrives cut off
            await self.app(scope, receive, _Captured())
            await self._garbled(send)
        elif rule.status is not None:
            if rule.act:  # acted, then the answer was lost behind an error (a gateway's 502 after the API wrote)
                await self.app(scope, receive, _Captured())
            await self._simulated_status(rule, send)
        elif rule.reset == "after":
            await self.app(scope, receive, _Captured())
            await drop_connection(send)
        elif rule.drop_fields:
            await self._without_fields(rule.drop_fields, scope, receive, send)
        elif rule.stall_s > 0:
            await self._stalled(rule.stall_s, scope, receive, send)
        else:
            await self.app(scope, receive, send)

    @staticmethod
    async def _garbled(send: Send) -> None:
        body = b'{"item": {"id": "0123'  # a JSON answer cut off mid-way
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    @staticmethod
    async def _simulated_status(rule: FaultRule, send: Send) -> None:
        status = rule.status or 500
        if rule.answer == "gateway":
            body = f"<html><body><h1>{status} Bad Gateway</h1><p>upstream timed out</p></body></html>".encode()
            content_type = b"text/html"
        elif rule.content_type is not None:  # a text body of the rule's own: an HTML page, a CSV of another shape
            body = str(rule.body).encode()
            content_type = rule.content_type.encode()
        else:
            answer = {"success": False, "message": f"Simulated {status}"} if rule.body is _NO_BODY else rule.body
            body = json.dumps(answer).encode()
            content_type = b"application/json"
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        if rule.retry_after is not None:
            seconds = rule.retry_after
            text = str(int(seconds)) if float(seconds).is_integer() else str(math.ceil(seconds))
            headers.append((b"retry-after", text.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _without_fields(self, names: tuple[str, ...], scope: Scope, receive: Receive, send: Send) -> None:
        """Act, then answer without `names` in the `item` and in each of the `items` (a JSON answer only)."""
        captured = _Captured()
        await self.app(scope, receive, captured)
        start = captured.start or {"type": "http.response.start", "status": 500, "headers": []}
        body = bytes(captured.body)
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if isinstance(answer, dict):
            objects = [answer.get("item"), *(answer.get("items") or [])]
            for value in objects:
                if isinstance(value, dict):
                    for name in names:
                        value.pop(name, None)
            body = json.dumps(answer).encode()
        headers = [(name, value) for name, value in start.get("headers", []) if name.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _stalled(self, stall_s: float, scope: Scope, receive: Receive, send: Send) -> None:
        """Act, then send status and headers at once and trickle the body: a space every 0.2 s, then the rest."""
        captured = _Captured()
        await self.app(scope, receive, captured)
        start = captured.start or {"type": "http.response.start", "status": 500, "headers": []}
        headers = [(name, value) for name, value in start.get("headers", []) if name.lower() != b"content-length"]
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        gone = asyncio.Event()
        watcher = asyncio.create_task(_wait_for_disconnect(receive, gone))
        try:
            for _ in range(max(1, math.ceil(stall_s / TRICKLE_INTERVAL_S))):
                await send({"type": "http.response.body", "body": b" ", "more_body": True})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(gone.wait(), TRICKLE_INTERVAL_S)
                if gone.is_set():
                    return  # the client gave up (its deadline): stop trickling so shutdown is not held up
            await send({"type": "http.response.body", "body": bytes(captured.body), "more_body": False})
        finally:
            watcher.cancel()


def _without_trailing_slash(scope: Scope) -> Scope:
    """`/leads/` as `/leads`: the help article posts to `.../lists/:listId/leads/`, which must not be a redirect.

    Done here, before routing, stats and fault matching, so all three see the route as the spec writes it.
    """
    path = scope["path"]
    if len(path) <= 1 or not path.endswith("/"):
        return scope
    scope = {**scope, "path": path.rstrip("/")}
    if isinstance(scope.get("raw_path"), bytes):
        scope["raw_path"] = scope["raw_path"].rstrip(b"/")
    return scope


async def _received_whole(receive: Receive) -> Receive:
    """The request body read in full up front, and handed to the app from memory.

    A real API sits behind an HTTPS edge that has the whole request before babelforce acts on it, so a client that
    gives up (its read timeout) does not stop the change: it completes unseen. Without this, uvicorn would answer
    the app's read with `http.disconnect` once the client is gone, and the sandbox would drop the change: kinder
    than the real thing, and it hid "nothing was created" replies about leads that did appear."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return receive  # gone before its body arrived: nothing to complete
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body, handed = b"".join(chunks), False

    async def replay() -> Message:
        nonlocal handed
        if not handed:
            handed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _wait_for_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


class _Captured:
    """An ASGI `send` that keeps the response instead of sending it."""

    def __init__(self) -> None:
        self.start: Message | None = None
        self.body = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
