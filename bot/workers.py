"""`leadbot run --http --workers N`: N processes on one machine serving one port and sharing one audit store.

Why uvicorn's own supervisor (an import string and a factory) rather than a pre-fork of our own: it already binds
the port once and hands the socket to every worker, restarts a worker that dies or hangs (it pings each one), stops
when a worker cannot start, turns SIGTERM/SIGINT into a clean stop of every worker, and rolls the workers on SIGHUP.
A pre-fork of ours would have to do all of that again. Its workers are spawned (fresh interpreters), so each one
builds everything it keeps from the same settings (the environment and .env, which every worker inherits): its own
Leadbot, Bolt app, BabelforceClient (token, connection pool), lookup indexes and list/campaign directory (hints,
always confirmed against babelforce before a write), and its own connection to the audit store.

What must hold across workers lives in the store (bot/audit.py: SQLite in WAL mode with a busy timeout, or
PostgreSQL): request-id de-duplication (a unique key), held "apply anyway?" questions (claimed once), undo records
(claimed once), the per-lead write lock (its lead_locks table), and the lease of the campaign alerts: every worker
runs an alert watcher, and only the one holding the store's lease watches (bot.alerts), so each alert is posted once;
another takes over when that one stops or dies. The same lease elects one watcher among replicas on several
machines, so there is one mechanism for both (an flock in this launch's folder would elect one per machine only).
The start-up sweep of unconfirmed writes is done once per launch, by the first worker to create a mark file in this
launch's own folder (so nobody is told twice how a write ended; replicas each sweep at their own start, and settle
each record once by compare-and-set). Each worker's settler follows up only the writes it made.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import uvicorn
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from . import metrics
from .app import EVENTS_PATH, SLACK_API_URL, http_app
from .audit import AuditError, AuditStore, open_store
from .http_server import server_options
from .logs import logging_config
from .pipeline import Leadbot
from .settings import BotSettings, StartupError, load_babelforce_settings, load_settings

log = logging.getLogger(__name__)

#: This launch's own folder (the sweep mark, the metrics), from the launcher to its workers.
RUNTIME_ENV = "LEADBOT_WORKERS_RUNTIME"
SWEEP_MARK = "start-up-sweep.done"


def max_workers() -> int:
    """Twice the CPUs this process may run on: a worker's work is mostly waiting for babelforce, so two per CPU keep
    every CPU busy; more only compete for them (and each worker holds its own caches and connections)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return 2 * max(1, cpus)


def worker_count(text: str) -> int:
    """argparse's reader of --workers: a whole number from 1 to max_workers(), else one sentence saying so."""
    most = max_workers()
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= most:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of worker processes: give a whole number from 1 to {most} "
            f"(twice this machine's {most // 2} CPUs)"
        )
    return value


def problems(workers: int, *, socket_mode: bool, db: str | Path | None) -> list[str]:
    """Why --workers cannot be used with these settings (nothing with one worker, today's single process)."""
    if workers <= 1:
        return []
    if socket_mode:
        return [
            "--workers needs HTTP mode (--http): in Socket Mode run several `leadbot run` processes instead, and "
            "Slack spreads the events over their connections (up to 10)."
        ]
    if db is not None and os.fspath(db) == ":memory:":
        return ["LEADBOT_DB=:memory: is private to one process: --workers needs an audit file every worker shares."]
    return []


# ---------------------------------------------------------------------------------------------------- the launcher


def serve(settings: BotSettings, host: str, port: int, workers: int) -> int:
    """Check Slack once, then run `workers` processes on one socket until SIGINT/SIGTERM. The settings are already
    checked and the store prepared (schema, interrupted writes marked) by the caller, before any worker starts."""
    problem = _check_slack(settings)
    if problem:
        from .run import _refuse

        return _refuse([problem])
    runtime = Path(tempfile.mkdtemp(prefix="leadbot-workers-"))
    os.environ[RUNTIME_ENV] = str(runtime)  # spawned workers inherit the environment, settings included
    try:
        prepare_metrics(runtime)
        config = uvicorn.Config(
            "bot.workers:worker_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level=settings.leadbot_log_level.lower(),
            log_config=logging_config(settings.leadbot_log_level, settings.leadbot_log_format),  # in every worker
            access_log=False,  # as in one process: access lines carry no value here and query strings could
            **server_options(),  # per worker: slow and idle connections closed, concurrent connections capped
        )
        with config.bind_socket() as sock:
            bound = sock.getsockname()[1]
            log.info(
                "leadbot serving Slack requests at http://%s:%s%s with %d workers", host, bound, EVENTS_PATH, workers
            )
            supervisor = Multiprocess(config, sockets=[sock])
            supervisor.run()
        if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
            print("leadbot cannot start: a worker process failed to start (see the log lines above).", file=sys.stderr)
            return 2
        return 0
    finally:
        os.environ.pop(RUNTIME_ENV, None)
        shutil.rmtree(runtime, ignore_errors=True)


def prepare_metrics(runtime: Path) -> None:
    """Prometheus' multiprocess mode before any worker starts: an empty folder in this launch's own runtime folder
    (removed when the launcher stops), named in PROMETHEUS_MULTIPROC_DIR, which every worker inherits, writes its
    values to, and /metrics reads from (so a scrape sums all workers, whichever one answers it)."""
    chosen = os.environ.get(metrics.MULTIPROC_ENV)  # an operator's own folder wins (emptied of a former run's values)
    metrics.prepare_multiprocess(chosen or runtime / "metrics")


def _check_slack(settings: BotSettings) -> str | None:
    """The bot token checked once, by the launcher (a wrong token fails fast, not once per worker)."""
    from .run import _check_slack as check

    assert settings.slack_bot_token is not None and settings.slack_signing_secret is not None  # checked before
    bolt = AsyncApp(
        token=settings.slack_bot_token.get_secret_value(),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        logger=logging.getLogger("bot.bolt"),
    )
    bolt.client.base_url = settings.slack_api_url or SLACK_API_URL
    return asyncio.run(check(bolt, app_token=None))


# ---------------------------------------------------------------------------------------------------- a worker


def worker_app() -> Starlette:
    """uvicorn's factory, called once in each worker process: everything the worker keeps, built from the settings
    the launcher checked. A worker that cannot start exits with uvicorn's start-up failure code, which stops the
    launcher rather than restarting the worker forever."""
    from .run import configure_logging, http_bot, then_freeze

    try:
        settings = load_settings()
        babelforce_settings = load_babelforce_settings(required=True)
        assert babelforce_settings is not None and settings.slack_bot_token is not None
        assert settings.slack_signing_secret is not None
        configure_logging(settings.leadbot_log_level, settings.leadbot_log_format)
        audit = open_store(settings.leadbot_db)  # the launcher's store: a SQLite file or PostgreSQL
    except StartupError as invalid:
        log.error("worker %d cannot start: %s", os.getpid(), "; ".join(invalid.problems))
        sys.exit(STARTUP_FAILURE)
    except AuditError as unusable:
        log.error("worker %d cannot start: %s", os.getpid(), unusable.message)
        sys.exit(STARTUP_FAILURE)
    leadbot, bolt = http_bot(settings, babelforce_settings, audit)
    runtime = os.environ.get(RUNTIME_ENV)
    worker = Worker(leadbot, audit, Path(runtime) if runtime else None)
    return http_app(
        bolt,
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        on_startup=then_freeze(worker.start),
        on_shutdown=worker.shutdown,
    )


class Worker:
    """One worker's start and stop: the launch's start-up sweep when it is the first, the campaign alerts (watched by
    whichever worker or replica holds the store's lease) in every one."""

    def __init__(self, leadbot: Leadbot, audit: AuditStore, runtime: Path | None) -> None:
        self.leadbot = leadbot
        self.audit = audit
        self.runtime = runtime  # None: started without the launcher (one process), so it sweeps

    def claim_sweep(self) -> bool:
        """True for the first caller of this launch only: the start-up sweep is done once."""
        if self.runtime is None:
            return True
        try:
            os.close(os.open(self.runtime / SWEEP_MARK, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    async def start(self) -> None:
        """The server's start-up hook: the launch's first worker settles what an earlier run left unconfirmed; every
        worker starts its alert watcher, which watches only while it holds the lease."""
        if self.claim_sweep():
            log.info("worker %d settles the writes an earlier run left unconfirmed", os.getpid())
            await self.leadbot.start()
        else:
            await self.leadbot.start_watching()

    async def shutdown(self) -> None:
        """The server's shutdown hook: the Leadbot's background work (the alert watcher gives its lease up) and
        connections, then the audit connection."""
        try:
            await self.leadbot.shutdown()
        finally:
            self.audit.close()
