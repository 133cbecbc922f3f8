"""leadbot's log lines: text (the default) or one JSON object per line (LEADBOT_LOG_FORMAT=json), the same hygiene
for both, and the request a line belongs to.

- Which request: `request_scope` opens one context per Slack request (its id, kind and user, set where Bolt
  dispatches it, bot.app), carried by a contextvar into everything that request runs, background work included;
  the pipeline adds the subcommand, list and lead (`annotate`). A line may also carry these as `extra=`. The JSON
  form writes them as fields; the text form is today's line, unchanged.
- Hygiene, on every handler in both formats: control characters escaped (EscapedControlCharacters), and
  `SecretsMasked`, a safety net behind the call sites' own care (bot.masking): credentials (Slack tokens, bearer
  tokens, secret=value pairs) replaced, and phone numbers that slipped through masked as bot.masking does.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from .masking import mask_digits

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Libraries whose DEBUG lines carry message bodies, response_urls or headers: never below INFO.
CHATTY_LOGGERS = ("slack_sdk", "slack_bolt", "bot.bolt", "httpcore", "aiohttp", "websockets")


@dataclass(slots=True)
class RequestContext:
    """What is known of the request a line belongs to; fields fill in as the request goes on."""

    request_id: str | None = None
    kind: str | None = None  # command, action, view, options, event, other
    user: str | None = None  # the Slack user id, as the text lines have always said ("by U…")
    subcommand: str | None = None
    list: str | None = None  # as the command names it, phone numbers masked
    lead_uid: str | None = None  # as the command names the lead (uid or id), phone numbers masked
    arrived: float | None = None  # time.perf_counter() at the request's arrival (for the reply latency)


#: The fields a JSON line carries from the request, and from a line's own `extra=` (which wins).
CONTEXT_FIELDS = ("request_id", "kind", "user", "subcommand", "list", "lead_uid")
LINE_FIELDS = (*CONTEXT_FIELDS, "outcome", "duration_ms")

_REQUEST: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("leadbot_request", default=None)


@contextlib.contextmanager
def request_scope(context: RequestContext) -> Iterator[RequestContext]:
    """`context` is the current request's for the block and for every task started in it."""
    token = _REQUEST.set(context)
    try:
        yield context
    finally:
        _REQUEST.reset(token)


def current() -> RequestContext | None:
    return _REQUEST.get()


def annotate(**known: str | None) -> None:
    """Add what became known (subcommand, list, lead_uid ...) to the current request's context, if there is one."""
    context = _REQUEST.get()
    if context is None:
        return
    for name, value in known.items():
        if value is not None and name in CONTEXT_FIELDS:
            setattr(context, name, value)


# ---------------------------------------------------------------------- hygiene


class EscapedControlCharacters(logging.Filter):
    """A log line is one line: control characters in a message (a newline, an escape sequence or a NUL typed in a
    command) are written as escapes, so nobody can forge a log line or recolour a terminal. Tracebacks stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in message):
            record.msg, record.args = _CONTROL.sub(lambda found: repr(found.group())[1:-1], message), ()
        return True


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_SLACK_TOKEN = re.compile(r"\b(?:xox[a-z]|xapp)-[A-Za-z0-9-]+")
_BEARER = re.compile(r"\b(Bearer)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_SECRET_PAIR = re.compile(
    r"""\b((?:access_token|refresh_token|client_secret|password|signing_secret|secret)["']?\s*[=:]\s*["']?)"""
    r"""[^\s"'&,;}]+""",
    re.IGNORECASE,
)
#: A number written with its + (E.164, separators allowed), or 11 to 15 digits in a row (a number without its +, as
#: babelforce's examples write them). Not an IP address, a time, a Slack timestamp or digits inside a hex id.
_PHONE = re.compile(
    r"(?<![\w.+])\+\d[\d\s\-./()]{4,}\d(?![\w])|(?<![\w.+\-])\d{11,15}(?![\w.])",
)


def redact(text: str) -> str:
    """`text` without credentials, and with phone numbers masked (all digits but the last two)."""
    if not text:
        return text
    text = _SLACK_TOKEN.sub("[redacted]", text)
    text = _BEARER.sub(r"\1 [redacted]", text)
    text = _SECRET_PAIR.sub(r"\1[redacted]", text)
    return _PHONE.sub(mask_digits, text)


class SecretsMasked(logging.Filter):
    """The safety net on every handler: a line's message, its exception text and its fields go out redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        for name in LINE_FIELDS:
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, redact(value))
        return True


# ---------------------------------------------------------------------- the JSON form


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, then what is known of the request
    (request_id, kind, user, subcommand, list, lead_uid) and of the line (outcome, duration_ms), and `exception`
    for a traceback. A field nobody knows is left out."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _REQUEST.get()
        if context is not None:
            for name in CONTEXT_FIELDS:
                value = getattr(context, name)
                if value is not None:
                    entry[name] = redact(value)
        for name in LINE_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(log_format: LogFormat = "text") -> logging.Formatter:
    """The formatter of `log_format` (also the factory dictConfig calls, in `logging_config`)."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def hygiene_filters() -> list[logging.Filter]:
    """The filters every handler gets, in both formats."""
    return [EscapedControlCharacters(), SecretsMasked()]


def install(handler: logging.Handler, log_format: LogFormat) -> None:
    """Give an existing handler the format and the hygiene filters (once each)."""
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    for wanted in hygiene_filters():
        if not any(type(existing) is type(wanted) for existing in handler.filters):
            handler.addFilter(wanted)


def floors(level: str) -> dict[str, int]:
    """Loggers kept above `level`: the Slack and HTTP libraries never below INFO (their DEBUG has bodies), httpx not
    below WARNING (it logs every babelforce request at INFO: a cost under load, and no news)."""
    numeric = logging.getLevelName(level)
    floor = max(numeric, logging.INFO)
    return {**dict.fromkeys(CHATTY_LOGGERS, floor), "httpx": max(numeric, logging.WARNING)}


def logging_config(level: str, log_format: LogFormat = "text") -> dict[str, Any]:
    """A logging.config.dictConfig for a process serving leadbot over uvicorn (uvicorn's `log_config`, applied in
    every worker process too): the root handler on stderr in `log_format` with the hygiene filters, uvicorn's own
    loggers passing their lines to it, the chatty libraries floored."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "escaped": {"()": "bot.logs.EscapedControlCharacters"},
            "masked": {"()": "bot.logs.SecretsMasked"},
        },
        "formatters": {"leadbot": {"()": "bot.logs.formatter", "log_format": log_format}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "leadbot",
                "filters": ["escaped", "masked"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            **{name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
            **{name: {"level": floor} for name, floor in floors(level).items()},
        },
    }
