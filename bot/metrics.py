"""leadbot's metrics, in Prometheus's text format: what it was asked, how fast it answered, what babelforce did.

Served at GET /metrics on the HTTP port in HTTP mode, and in Socket Mode on LEADBOT_METRICS_PORT (`serve`). The
names and what each counts are in docs/reliability.md ("Metrics and logs").

One process: the values live in this process (prometheus_client's default registry, which adds its process_* and
python_* metrics). Several processes (`leadbot run --http --workers N`): prometheus_client's multiprocess mode. Each
process writes its values to files in the folder PROMETHEUS_MULTIPROC_DIR names, and /metrics, whichever worker
answers it, adds up every process's files. prometheus_client picks its mode once, when it is imported, from that
variable: so the parent process calls `prepare_multiprocess` before it starts
the workers, which inherit the variable. `exposition()` works in both modes.

Labels are few and fixed by the code (subcommand names, outcomes, babelforce operations, HTTP statuses): never a
user, a list, a lead, a number or an id, so a scrape leaks nothing and the series stay bounded. A label value that
is not one of the code's own words becomes "other".
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

#: prometheus_client's own switch to multiprocess mode: the folder each process writes its values to.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Slack shows an error when the ack takes more than 3 s; leadbot aims at 100 ms. Fine below 250 ms, then to 5 s.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
#: The answer after the ack: one to a few babelforce calls (each with a 20 s deadline, retries included).
REPLY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)
#: One HTTP request to babelforce (a list's CSV export may take seconds).
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)

# No <name>_created series: they double the page, mean nothing on a dashboard, and multiprocess mode has none.
disable_created_metrics()

COMMANDS = Counter(
    "leadbot_commands",
    "Commands, forms and buttons handled, by subcommand and outcome (ok, asked, unchanged, duplicate, refused, "
    "unknown, unrecorded, crashed, denied, invalid).",
    ["subcommand", "outcome"],
)
ACK_SECONDS = Histogram(
    "leadbot_ack_seconds",
    "From a Slack request's arrival to its acknowledgement (Slack gives up after 3 s), by kind of request.",
    ["kind"],
    buckets=ACK_BUCKETS,
)
REPLY_SECONDS = Histogram(
    "leadbot_reply_seconds",
    "From a Slack request's arrival to its answer handed to Slack after the ack, by kind and subcommand.",
    ["kind", "subcommand"],
    buckets=REPLY_BUCKETS,
)
BABELFORCE_REQUESTS = Counter(
    "leadbot_babelforce_requests",
    "HTTP requests to babelforce, by operation and status (an HTTP status, or timeout, connect_error, "
    "network_error, cancelled, error when no answer came); retries count as requests of their own.",
    ["operation", "status"],
)
BABELFORCE_SECONDS = Histogram(
    "leadbot_babelforce_request_seconds",
    "Duration of one HTTP request to babelforce, from sending to the answer's headers, by operation.",
    ["operation"],
    buckets=CALL_BUCKETS,
)
BABELFORCE_RETRIES = Counter(
    "leadbot_babelforce_retries",
    "Requests to babelforce sent again, by operation and reason (the status, 401 after a token refresh, or the "
    "failure).",
    ["operation", "reason"],
)
TOKEN_FETCHES = Counter(
    "leadbot_babelforce_token_fetches",
    "Tokens fetched from babelforce's /oauth/token, by grant type and result (ok, refused, error).",
    ["grant", "result"],
)
AUDIT_ERRORS = Counter(
    "leadbot_audit_errors",
    "Failures of the audit store (LEADBOT_DB), by the operation that failed.",
    ["operation"],
)
AUDIT_PURGED = Counter(
    "leadbot_audit_purged",
    "Audit records removed by the retention purge (records older than LEADBOT_AUDIT_RETENTION_DAYS).",
)
ALERTS = Counter(
    "leadbot_alerts",
    "Campaign alert lines for LEADBOT_ALERT_CHANNEL, by state (low, empty, exhausted, stopped, ok for a recovery) "
    "and result (sent, failed).",
    ["state", "result"],
)

#: A label value: one of the code's own lower-case words (or an HTTP status).
_WORD = re.compile(r"^[a-z0-9_]{1,40}$")
OTHER = "other"


class _Vocabulary:
    """Keeps one label's values bounded: a value must look like one of the code's words, and after `limit`
    different values anything new is counted as "other" (a bug feeding user text into a label cannot grow the
    series without end)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: object) -> str:
        word = str(value).lower()
        if not _WORD.match(word):
            return OTHER
        if word in self._seen:
            return word
        with self._lock:
            if len(self._seen) >= self._limit:
                return OTHER
            self._seen.add(word)
        return word


_subcommands = _Vocabulary(64)
_outcomes = _Vocabulary(32)
_kinds = _Vocabulary(16)
_operations = _Vocabulary(64)
_statuses = _Vocabulary(64)
_reasons = _Vocabulary(32)
_audit_operations = _Vocabulary(64)
_small = _Vocabulary(32)


def command(subcommand: str, outcome: str) -> None:
    """One command, form or button handled (`subcommand` is a registry name, "help" or "other")."""
    COMMANDS.labels(_subcommands(subcommand), _outcomes(outcome)).inc()


def acked(kind: str, seconds: float) -> None:
    ACK_SECONDS.labels(_kinds(kind)).observe(seconds)


def replied(kind: str, subcommand: str, seconds: float) -> None:
    REPLY_SECONDS.labels(_kinds(kind), _subcommands(subcommand)).observe(seconds)


def audit_error(operation: str) -> None:
    """The audit store failed at `operation` (begin, finish, take_lead, hold, claim ...: the store's method)."""
    AUDIT_ERRORS.labels(_audit_operations(operation)).inc()


def audit_purged(count: int) -> None:
    """The retention purge removed `count` audit records."""
    if count > 0:
        AUDIT_PURGED.inc(count)


def alert(state: str, *, sent: bool) -> None:
    ALERTS.labels(_small(state), "sent" if sent else "failed").inc()


class BabelforceMetrics:
    """The babelforce client's observer (a babelforce.observe.CallObserver) that counts its traffic here. It does
    not import babelforce: this module stays light for the worker processes that only write metrics."""

    def on_response(self, operation: str, status: str, seconds: float) -> None:
        name = _operations(operation)
        BABELFORCE_REQUESTS.labels(name, _statuses(status)).inc()
        BABELFORCE_SECONDS.labels(name).observe(seconds)

    def on_retry(self, operation: str, reason: str) -> None:
        BABELFORCE_RETRIES.labels(_operations(operation), _reasons(reason)).inc()

    def on_token(self, grant: str, result: str) -> None:
        TOKEN_FETCHES.labels(_small(grant), _small(result)).inc()


#: The one observer every client of the bot shares (Leadbot wires it to its service's client).
BABELFORCE = BabelforceMetrics()


# ---------------------------------------------------------------------- exposition, one process or several


def multiprocess_dir() -> str | None:
    """The folder of multiprocess mode, None in single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess(directory: str | os.PathLike[str]) -> Path:
    """Switch to multiprocess mode with `directory` (created if missing; values of an earlier run deleted), before
    the worker processes start: they inherit PROMETHEUS_MULTIPROC_DIR and write their values there. This process's
    own values from now on go there too. Returns the folder."""
    path = Path(directory).resolve()
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):  # prometheus_client's files: a former run's pids would be added to this one's
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    values.ValueClass = values.MultiProcessValue()
    return path


def registry() -> CollectorRegistry:
    """What a scrape reads: every process's files in multiprocess mode, else this process's registry."""
    folder = multiprocess_dir()
    if folder is None:
        return REGISTRY
    combined = CollectorRegistry()
    MultiProcessCollector(combined, path=folder)
    return combined


def exposition() -> tuple[bytes, str]:
    """The body of GET /metrics and its content type, in either mode (blocking: file reads in multiprocess mode)."""
    return generate_latest(registry()), CONTENT_TYPE


def serve(host: str, port: int) -> Callable[[], None]:
    """Serve /metrics on `host`:`port` from a background thread (Socket Mode's LEADBOT_METRICS_PORT); returns the
    function that stops it. OSError when the address cannot be listened on."""
    server, thread = start_http_server(port, addr=host, registry=registry())

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
