"""Building the Bolt app and serving it: HTTP (an ASGI app on uvicorn) or Socket Mode. Nothing runs at import."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from urllib.parse import parse_qs

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from . import ack_first, listeners, logs, metrics
from .pipeline import Leadbot
from .slack_edge import CONTEXT_KEY, request_context

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
METRICS_PATH = metrics.METRICS_PATH
#: In a Bolt request's context: time.perf_counter() when the HTTP edge received it (the ack is timed from there).
ARRIVED_KEY = "leadbot_arrived"
SLACK_API_URL = "https://slack.com/api/"


#: Bolt's signature check logs a refused request's whole body (user text, ids, a response_url anyone could post to).
_VERIFICATION_LOGGERS = ("slack_bolt.RequestVerification", "slack_bolt.AsyncRequestVerification")
_REFUSED_SIGNATURE = "Invalid request signature detected"


class _WithoutRefusedBodies(logging.Filter):
    """Keeps the line that a request was refused, drops what it carried (signature, timestamp, body)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith(_REFUSED_SIGNATURE):
            record.msg = f"{_REFUSED_SIGNATURE}: a request was refused with 401 (its content is not logged)"
            record.args = ()
        return True


_WITHOUT_REFUSED_BODIES = _WithoutRefusedBodies()


def build_app(
    leadbot: Leadbot,
    *,
    bot_token: str,
    signing_secret: str | None,
    slack_api_url: str | None = None,
) -> AsyncApp:
    """The one Bolt app every mode serves. `signing_secret` None turns request signing off (Socket Mode only)."""
    for name in _VERIFICATION_LOGGERS:  # before AsyncApp: Bolt's middleware loggers exist from its construction
        logging.getLogger(name).addFilter(_WITHOUT_REFUSED_BODIES)  # a filter is added once, however often called
    app = _MeasuredApp(
        name="leadbot",  # else Bolt names it after its caller's file by reading the whole call stack (~70 ms)
        token=bot_token,
        signing_secret=signing_secret or "",
        request_verification_enabled=signing_secret is not None,
        # Bolt answers Slack when the listener returns, and every listener returns right after its ack(), its work
        # started in the background (Leadbot.in_background): the answer leaves at once, where Bolt's ack-first mode
        # would poll for the ack every 10 ms (up to 10 ms more per ack, and CPU in a burst)
        process_before_response=True,
        logger=logging.getLogger("bot.bolt"),
    )

    # Bolt builds its own client from the token (and warns when given both); only the address differs here.
    app.client.base_url = slack_api_url or SLACK_API_URL

    async def attach_leadbot(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        context[CONTEXT_KEY] = leadbot
        await next()

    app.middleware(attach_leadbot)
    app.error(_log_listener_error)
    listeners.register(app)
    return app


class _MeasuredApp(AsyncApp):
    """Bolt's app, which also times each request's ack (leadbot_ack_seconds), opens the request's log context
    (bot.logs) and counts it as awaiting its ack (bot.ack_first), in every mode: HTTP, Socket Mode and the console.
    Bolt answers a request once its listener has returned, right after ack(); the work the listener started then
    runs in a task that carries the context."""

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        arrived = req.context.get(ARRIVED_KEY)
        if not isinstance(arrived, float):  # Socket Mode: from here
            arrived = time.perf_counter()
        context = request_context(req.body, arrived)
        with ack_first.answering(), logs.request_scope(context):  # the HTTP edge counted it already: counted once
            response = await super().async_dispatch(req)
        metrics.acked(context.kind or "other", time.perf_counter() - arrived)
        return response


async def _log_listener_error(error: Exception, body: dict) -> None:
    """Bolt's last resort; listeners already turn failures into replies, so this only logs (no body: it has PII)."""
    log.error("unhandled error in a listener for a %s request: %s", body.get("type", "command"), type(error).__name__)


#: Slack's own payloads are a few KB (a modal's state at most tens of KB); anything larger is refused unread.
MAX_BODY_BYTES = 1_000_000
#: Slack refuses to sign for a request older than this, and so do we (Bolt's verifier uses the same window).
SIGNATURE_MAX_AGE_S = 300
_SIGNED_HEADERS = ("x-slack-signature", "x-slack-request-timestamp")


class _BodyTooLarge(Exception):
    pass


def http_app(
    app: AsyncApp,
    *,
    signing_secret: str,
    on_startup: Callable[[], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> Starlette:
    """Slack's requests (commands, interactivity, select options) at /slack/events; GET /healthz for probes; GET
    /metrics for Prometheus (unsigned, and it carries no id, name or number: bot.metrics).

    Before Bolt sees a request, this edge makes sure it is Slack's: one copy of each signature header, a body of
    at most MAX_BODY_BYTES, and a valid signature over the raw bytes. Anything else gets 401 (413 for a body too
    large) and one log line, never a traceback: forged requests need no secret to be sent, so they must be cheap.
    A signed body that is not one of Slack's shapes gets 400."""
    handler = AsyncSlackRequestHandler(app)
    secret = signing_secret.encode()

    async def events(request: Request) -> Response:
        arrived = time.perf_counter()
        if not _plausible_signature_headers(request):
            log.info("refused a request to %s: missing, repeated or malformed signature headers (401)", EVENTS_PATH)
            return PlainTextResponse("invalid request", status_code=401)
        try:
            body = await _read_body(request, MAX_BODY_BYTES)
        except _BodyTooLarge:
            log.warning("refused a request to %s: body over %d bytes (413)", EVENTS_PATH, MAX_BODY_BYTES)
            return PlainTextResponse("request too large", status_code=413)
        except ClientDisconnect:
            log.info("a request to %s was dropped by its sender before its body arrived", EVENTS_PATH)
            return PlainTextResponse("incomplete request", status_code=400)
        # awaiting its ack from its whole body on (work after other acks waits meanwhile), not from its first byte:
        # a client that stalls mid-body (for up to the server's request deadline, with signature headers anyone can
        # forge) would otherwise make every step of every answer wait the max wait
        with ack_first.answering():
            return await _answer(request, body, arrived)

    async def _answer(request: Request, body: bytes, arrived: float) -> Response:
        if not _signed(body, request.headers, secret, now=time.time()):
            log.info("refused a request to %s: the signature does not match (401)", EVENTS_PATH)
            return PlainTextResponse("invalid request", status_code=401)
        problem = _malformed(body, request.headers.get("content-type", ""))
        if problem:
            log.warning("refused a signed request to %s: %s (400)", EVENTS_PATH, problem)
            return PlainTextResponse("malformed request", status_code=400)
        request._body = body  # Bolt's adapter reads the body again: give it the bytes already read
        return await handler.handle(request, {ARRIVED_KEY: arrived})

    async def health(_: Request) -> Response:
        return JSONResponse({"ok": True})

    async def metrics_page(_: Request) -> Response:
        body, content_type = await asyncio.to_thread(metrics.exposition)  # file reads with several workers
        return Response(body, headers={"Content-Type": content_type})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if on_startup is not None:  # in the serving loop (background work such as the campaign alerts)
            await on_startup()
        yield
        if on_shutdown is not None:
            await on_shutdown()

    return Starlette(
        routes=[
            Route(EVENTS_PATH, events, methods=["POST"]),
            Route(HEALTH_PATH, health, methods=["GET"]),
            Route(METRICS_PATH, metrics_page, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused past `limit` bytes: a declared length over it is not read at all, a stream is cut."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _signed(body: bytes, headers: Mapping[str, str], secret: bytes, *, now: float) -> bool:
    """Slack's v0 signature over the raw bytes (no decoding, so any body can be checked), within its 5 minutes."""
    timestamp, signature = headers["x-slack-request-timestamp"], headers["x-slack-signature"]
    if abs(now - int(timestamp)) > SIGNATURE_MAX_AGE_S:
        return False
    expected = "v0=" + hmac.new(secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def _malformed(body: bytes, content_type: str) -> str | None:
    """Why a signed body is not a Slack request Bolt can read (None: it is): Slack sends UTF-8, as a form whose
    `payload` (interactions) is a JSON object, or as a JSON object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "its body is not UTF-8"
    if content_type.startswith("application/json"):
        return None if _json_object(text) else "its JSON body is not an object"
    form = parse_qs(text, keep_blank_values=True)
    payloads = form.get("payload")
    if payloads is not None and (len(payloads) != 1 or not _json_object(payloads[0])):
        return "its payload is not one JSON object"
    return None


def _json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


#: A Slack timestamp is whole seconds since 1970 (10 digits until the year 2286); longer is never genuine.
_TIMESTAMP_MAX_DIGITS = 12


def _plausible_signature_headers(request: Request) -> bool:
    """Exactly one of each signature header, an ASCII-digit timestamp and an ASCII signature.

    Two copies of a header are refused outright: a proxy and Bolt could each read a different one. Nothing of the
    request is logged.
    """
    if any(len(request.headers.getlist(name)) != 1 for name in _SIGNED_HEADERS):
        return False
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    return (
        timestamp.isascii()
        and timestamp.isdigit()
        and len(timestamp) <= _TIMESTAMP_MAX_DIGITS
        and signature.isascii()
        and bool(signature)
    )
