"""`leadbot run`: serve the bot to a real Slack workspace, in Socket Mode or over HTTP."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Literal

import aiohttp
import uvicorn
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from babelforce.client import BabelforceClient
from babelforce.config import BabelforceSettings

from . import metrics
from .alerts import AlertWatcher
from .app import EVENTS_PATH, SLACK_API_URL, build_app, http_app
from .audit import AuditError, AuditStore, open_store
from .http_server import server_options
from .logs import CHATTY_LOGGERS as CHATTY_LOGGERS  # where they have always been found (moved to bot.logs)
from .logs import TEXT_FORMAT, LogFormat, floors, install, logging_config
from .logs import EscapedControlCharacters as EscapedControlCharacters
from .permissions import AccessPolicy, Gatekeeper
from .pipeline import Leadbot
from .retention import Retention
from .service import LeadService
from .settings import BotSettings, StartupError, load_babelforce_settings, load_settings
from .slack_edge import slack_error
from .workers import problems as workers_problems
from .workers import serve as serve_workers

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except StartupError as invalid:
        return _refuse(invalid.problems)
    mode: Literal["http", "socket"] = "http" if args.http or settings.slack_app_token is None else "socket"
    problems: list[str] = []
    babelforce_settings = None
    try:
        settings.check(mode)
    except StartupError as slack_problems:
        problems += slack_problems.problems
    workers = getattr(args, "workers", 1)
    problems += workers_problems(workers, socket_mode=mode == "socket", db=settings.leadbot_db)
    try:
        babelforce_settings = load_babelforce_settings(required=True)
    except StartupError as babelforce_problems:
        problems += babelforce_problems.problems
    if problems or babelforce_settings is None:
        return _refuse(problems)
    try:
        audit = open_store(settings.leadbot_db)  # a SQLite file (data/leadbot.db) or PostgreSQL, migrated
    except AuditError as unusable:
        return _refuse([unusable.message])
    configure_logging(settings.leadbot_log_level, settings.leadbot_log_format)
    try:
        audit.settle_interrupted()
    except AuditError as unusable:
        audit.close()
        return _refuse([unusable.message])
    if settings.leadbot_allow_all_writers:
        log.warning("LEADBOT_ALLOW_ALL_WRITERS=true: everyone in the workspace may add, rank, set and undo")
    if mode == "http" and settings.leadbot_metrics_port is not None:
        log.warning(
            "LEADBOT_METRICS_PORT is for Socket Mode: HTTP mode serves %s on its own port", metrics.METRICS_PATH
        )
    try:
        if mode == "socket":
            return asyncio.run(_serve_socket_mode(settings, babelforce_settings, audit))
        host = args.host or settings.leadbot_host
        port = settings.leadbot_port if args.port is None else args.port
        if workers > 1:  # the store is ready (schema, interrupted writes) before any worker opens it
            return serve_workers(settings, host, port, workers)
        return _serve_http(settings, babelforce_settings, host, port, audit)
    finally:
        audit.close()


def configure_logging(level: str, log_format: LogFormat = "text") -> None:
    """leadbot's own lines at `level`, as text or JSON (LEADBOT_LOG_FORMAT), with the same hygiene either way
    (bot.logs); the Slack and HTTP libraries no lower than INFO (their DEBUG has bodies), httpx no lower than
    WARNING."""
    logging.basicConfig(level=level, format=TEXT_FORMAT)
    for handler in logging.getLogger().handlers:
        install(handler, log_format)
    for name, floor in floors(level).items():
        logging.getLogger(name).setLevel(floor)


def _leadbot(settings: BotSettings, client: BabelforceClient, audit: AuditStore) -> Leadbot:
    """The bot's rules from the settings: who may do what (groups looked up with the bot token), the audit trail."""
    assert settings.slack_bot_token is not None  # checked before
    slack = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url or SLACK_API_URL
    )
    policy = AccessPolicy.from_settings(settings)
    if policy.uses_groups:
        log.info("LEADBOT_WRITERS/LEADBOT_READERS name user groups: the app needs the usergroups:read scope")
    return Leadbot(
        LeadService(client, default_region=settings.leadbot_default_region),
        audit=audit,
        gate=Gatekeeper(policy, slack),
        audit_channel=settings.leadbot_audit_channel,
        find_max_lists=settings.leadbot_find_max_lists,
        slack=slack,
        alerts=alert_watcher(settings, client, slack, audit),
        retention=Retention(audit, settings.leadbot_audit_retention_days),
    )


def freeze_start_up_heap() -> None:
    """Once a serving process has built everything it keeps (modules, settings, the app), collect and freeze it:
    Python's full collections then skip those objects. Unfrozen, a full collection walked all of them in the middle
    of a burst (78-95 ms, more than an ack's whole budget, measured with gc.callbacks); frozen, it takes a few ms.
    Frozen objects are still freed when their last reference goes; only cycles among them would stay."""
    gc.collect()
    gc.freeze()


def then_freeze(start: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """A server's start-up hook that runs `start`, then freezes the heap: by then the server itself (uvicorn's
    protocol classes, the ASGI app, the first connections) is built too, and no request has arrived yet."""

    async def started() -> None:
        await start()
        freeze_start_up_heap()

    return started


def alert_watcher(
    settings: BotSettings, client: BabelforceClient, slack: AsyncWebClient, store: AuditStore
) -> AlertWatcher | None:
    """The campaign alerts of LEADBOT_ALERT_CHANNEL (None when it is unset): watched by one process of all those
    sharing the store, the holder of its lease (bot.alerts)."""
    if settings.leadbot_alert_channel is None:
        return None
    return AlertWatcher(
        client,
        slack,
        settings.leadbot_alert_channel,
        interval=settings.leadbot_alert_interval,
        hopper_min=settings.leadbot_alert_hopper_min,
        store=store,
        lease=settings.leadbot_alert_lease,
    )


def http_bot(
    settings: BotSettings, babelforce_settings: BabelforceSettings, audit: AuditStore
) -> tuple[Leadbot, AsyncApp]:
    """One HTTP-mode process's bot (one process, or each worker): its babelforce client, Leadbot and signed Bolt app."""
    assert settings.slack_bot_token is not None and settings.slack_signing_secret is not None  # checked before
    leadbot = _leadbot(settings, BabelforceClient.from_settings(babelforce_settings), audit)
    bolt = build_app(
        leadbot,
        bot_token=settings.slack_bot_token.get_secret_value(),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        slack_api_url=settings.slack_api_url,
    )
    return leadbot, bolt


def _serve_http(
    settings: BotSettings, babelforce_settings: BabelforceSettings, host: str, port: int, audit: AuditStore
) -> int:
    assert settings.slack_signing_secret is not None  # checked above
    leadbot, bolt = http_bot(settings, babelforce_settings, audit)
    problem = asyncio.run(_check_slack(bolt, app_token=None))
    if problem:
        return _refuse([problem])
    log.info("leadbot serving Slack requests at http://%s:%s%s", host, port, EVENTS_PATH)
    uvicorn.run(
        http_app(
            bolt,
            signing_secret=settings.slack_signing_secret.get_secret_value(),
            on_startup=then_freeze(leadbot.start),
            on_shutdown=leadbot.shutdown,
        ),
        host=host,
        port=port,
        log_level=settings.leadbot_log_level.lower(),
        access_log=False,  # access lines carry no value here and query strings could
        log_config=logging_config(settings.leadbot_log_level, settings.leadbot_log_format),  # in every worker too
        **server_options(),  # slow and idle connections closed, concurrent connections capped (bot.http_server)
    )
    return 0


async def _serve_socket_mode(settings: BotSettings, babelforce_settings: BabelforceSettings, audit: AuditStore) -> int:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    assert settings.slack_bot_token is not None and settings.slack_app_token is not None  # checked above
    app_token = settings.slack_app_token.get_secret_value()
    async with BabelforceClient.from_settings(babelforce_settings) as client:
        leadbot = _leadbot(settings, client, audit)
        bolt = build_app(
            leadbot,
            bot_token=settings.slack_bot_token.get_secret_value(),
            signing_secret=None,  # Socket Mode messages arrive over an authenticated websocket, unsigned
            slack_api_url=settings.slack_api_url,
        )
        problem = await _check_slack(bolt, app_token=app_token)
        if problem:
            return _refuse([problem])
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows event loops
                loop.add_signal_handler(signum, stop.set)
        stop_metrics = _serve_metrics(settings)
        if isinstance(stop_metrics, str):
            return _refuse([stop_metrics])
        handler = AsyncSocketModeHandler(bolt, app_token)
        try:
            freeze_start_up_heap()  # before the first request can arrive
            await handler.connect_async()
            log.info("leadbot connected to Slack in Socket Mode")
            await leadbot.start()  # settles what an earlier run left unconfirmed; starts the campaign alerts
            await stop.wait()
            log.info("leadbot stopping")
        finally:
            await handler.close_async()
            await leadbot.aclose()
            if stop_metrics is not None:
                stop_metrics()
    return 0


def _serve_metrics(settings: BotSettings) -> Callable[[], None] | str | None:
    """Socket Mode's /metrics on LEADBOT_METRICS_HOST:LEADBOT_METRICS_PORT (None: unset, no metrics server); the
    function that stops it, or why it cannot start."""
    port, host = settings.leadbot_metrics_port, settings.leadbot_metrics_host
    if port is None:
        return None
    try:
        stop = metrics.serve(host, port)
    except OSError as failure:
        return f"LEADBOT_METRICS_PORT={port}: cannot listen on {host}:{port} ({failure.strerror or failure})."
    log.info("metrics at http://%s:%s%s", host, port, metrics.METRICS_PATH)
    return stop


async def _check_slack(bolt: AsyncApp, *, app_token: str | None) -> str | None:
    """Fail fast on tokens Slack refuses (a wrong token would otherwise mean silent retries forever)."""
    try:
        await bolt.client.auth_test()
    except SlackApiError as refused:
        return f"SLACK_BOT_TOKEN was refused by Slack ({slack_error(refused)})."
    except (aiohttp.ClientError, TimeoutError, OSError) as unreachable:
        return f"Could not reach Slack at {bolt.client.base_url} ({type(unreachable).__name__}); check SLACK_API_URL."
    if app_token is not None:
        try:
            await bolt.client.apps_connections_open(app_token=app_token)
        except SlackApiError as refused:
            return f"SLACK_APP_TOKEN was refused by Slack ({slack_error(refused)})."
        except (aiohttp.ClientError, TimeoutError, OSError) as unreachable:
            return f"Could not reach Slack at {bolt.client.base_url} ({type(unreachable).__name__})."
    return None


def _refuse(problems: list[str]) -> int:
    print("leadbot cannot start:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    print("See .env.example for every setting.", file=sys.stderr)
    return 2
