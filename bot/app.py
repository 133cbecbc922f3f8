"""Building the Bolt app and serving it: HTTP (an ASGI app on uvicorn) or Socket Mode. Nothing runs at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from . import listeners
from .pipeline import Leadbot
from .slack_edge import CONTEXT_KEY

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
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
    app = AsyncApp(
        token=bot_token,
        signing_secret=signing_secret or "",
        request_verification_enabled=signing_secret is not None,
        process_before_response=False,  # ack first: Bolt answers Slack as soon as ack() is called
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


async def _log_listener_error(error: Exception, body: dict) -> None:
    """Bolt's last resort; listeners already turn failures into replies, so this only logs (no body: it has PII)."""
    log.error("unhandled error in a listener for a %s request: %s", body.get("type", "command"), type(error).__name__)


def http_app(app: AsyncApp, *, on_shutdown: Callable[[], Awaitable[None]] | None = None) -> Starlette:
    """Slack's requests (commands, interactivity, select options) at /slack/events; GET /healthz for probes."""
    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        if not _plausible_signature_headers(request):
            return PlainTextResponse("invalid request", status_code=401)
        return await handler.handle(request)

    async def health(_: Request) -> Response:
        return JSONResponse({"ok": True})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            await on_shutdown()

    return Starlette(
        routes=[Route(EVENTS_PATH, events, methods=["POST"]), Route(HEALTH_PATH, health, methods=["GET"])],
        lifespan=lifespan,
    )


#: A Slack timestamp is whole seconds since 1970 (10 digits until the year 2286); longer is never genuine.
_TIMESTAMP_MAX_DIGITS = 12


def _plausible_signature_headers(request: Request) -> bool:
    """Headers Bolt's verifier can check without crashing: an ASCII-digit timestamp and an ASCII signature.

    slack_sdk's verifier raises (a 500) on a non-numeric timestamp or a non-ASCII signature; such a request is
    forged or broken, so it gets the 401 any unverifiable request gets. Nothing of the request is logged.
    """
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    return (
        timestamp.isascii()
        and timestamp.isdigit()
        and len(timestamp) <= _TIMESTAMP_MAX_DIGITS
        and signature.isascii()
        and bool(signature)
    )
