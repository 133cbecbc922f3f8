"""LEADBOT_LOG_FORMAT=json (issue 15 item 6): one JSON object per line, with the request's fields, and the same
hygiene as the text lines (phone numbers masked, no token, no control character)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bot.logs import RequestContext, install, redact, request_scope
from sandbox.seed import demo_number
from tests.support import Bot, texts

TOKEN = "xoxb-1234567890-abcdefghijklmnop"
NUMBER = "+4915100000040"
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@contextmanager
def captured(log_format: str, level: int = logging.INFO, logger: str = "bot") -> Iterator[io.StringIO]:
    """Lines as `leadbot run` writes them: a handler on the root logger given the format and the filters by
    bot.logs.install, the way configure_logging gives them to the real handler."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    install(handler, log_format)  # type: ignore[arg-type]
    root, watched = logging.getLogger(), logging.getLogger(logger)
    saved = watched.level
    root.addHandler(handler)
    watched.setLevel(level)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        watched.setLevel(saved)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_phone_number_and_a_token_in_a_message_are_masked_in_both_formats(log_format: str) -> None:
    with captured(log_format, logger="tests.logs") as stream:
        logging.getLogger("tests.logs").warning("called %s with %s; then\x1b[31m Bearer abc.def", NUMBER, TOKEN)
    output = stream.getvalue()
    assert NUMBER not in output and NUMBER[1:] not in output
    assert "•••••••••••40" in output
    assert TOKEN not in output and "abcdefghijklmnop" not in output and "abc.def" not in output
    assert "\x1b" not in output  # the escape sequence is written out, not sent to the terminal
    assert len(output.splitlines()) == 1
    if log_format == "json":
        (line,) = json_lines(stream)
        assert line["level"] == "WARNING" and line["logger"] == "tests.logs"
        assert line["message"].startswith("called •••••••••••40 with [redacted]; then\\x1b[31m Bearer [redacted]")
        assert ISO_UTC.match(line["time"]), line["time"]


def test_json_writes_a_traceback_as_one_field_without_secrets() -> None:
    with captured("json", logger="tests.logs") as stream:
        try:
            raise RuntimeError(f"babelforce said password={TOKEN} for {NUMBER}")
        except RuntimeError:
            logging.getLogger("tests.logs").exception("it broke")
    (line,) = json_lines(stream)
    assert line["message"] == "it broke"
    assert "RuntimeError" in line["exception"] and "Traceback" in line["exception"]
    assert TOKEN not in line["exception"] and NUMBER not in line["exception"]


def test_the_request_context_gives_every_line_its_fields() -> None:
    context = RequestContext(request_id="command:123.456.abc", kind="command", user="U0SUPERVISOR")
    with captured("json", logger="tests.logs") as stream, request_scope(context):
        logging.getLogger("tests.logs").info("one")
        context.subcommand, context.list = "rank", "Spring leads"
        logging.getLogger("tests.logs").info("two", extra={"outcome": "ok", "duration_ms": 12.5})
    logging.getLogger("tests.logs").info("outside: not captured")
    first, second = json_lines(stream)
    assert first["request_id"] == "command:123.456.abc" and first["user"] == "U0SUPERVISOR"
    assert "subcommand" not in first and "outcome" not in first  # unknown yet: left out
    assert second["subcommand"] == "rank" and second["list"] == "Spring leads"
    assert second["outcome"] == "ok" and second["duration_ms"] == 12.5


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("leadbot serving Slack requests at http://127.0.0.1:3000/slack/events", True),
        ("request command:13345224609.738474920.8088930838d88f008e0 was already handled", True),
        ("lead aa220078503dc86b01504585279e6933 in list 1700000000", True),
        ("/lead rank by U0SUPERVISOR list=Spring leads lead=lead-10: ok in 45 ms", True),
        ("number 4916098119998 refused", False),
        ("number +49 151 0000 0040 refused", False),
    ],
)
def test_the_safety_net_masks_numbers_but_leaves_addresses_ids_and_times(text: str, kept: bool) -> None:
    assert (redact(text) == text) is kept, redact(text)


def test_a_real_command_logs_one_json_line_with_its_fields(bot: Bot) -> None:
    with captured("json", logger="bot") as stream:
        interaction = bot.command('rank "Spring leads" lead-10 100')
        reply = bot.driver.replies(interaction, count=1)[0]
    assert "first of the next batch" in texts(reply)
    lines = json_lines(stream)
    (done,) = [line for line in lines if line["message"].startswith("/lead rank")]
    assert done["logger"] == "bot.pipeline" and done["level"] == "INFO"
    assert ISO_UTC.match(done["time"])
    assert done["request_id"] == f"command:{interaction.trigger_id}"
    assert done["kind"] == "command"
    assert done["user"] == "U0SUPERVISOR"
    assert done["subcommand"] == "rank"
    assert done["list"] == "Spring leads"
    assert done["lead_uid"] == "lead-10"
    assert done["outcome"] == "ok"
    assert isinstance(done["duration_ms"], float) and done["duration_ms"] > 0


def test_a_lead_named_by_its_number_is_masked_in_the_fields_and_lines_inside_the_request_carry_its_id(
    bot: Bot,
) -> None:
    """The lead is named by its phone number; a babelforce 503 makes the client log a retry warning on the way,
    which carries the request's id and subcommand although the client knows nothing of Slack."""
    number = demo_number(12)
    bot.control.faults({"status": 503, "method": "GET", "path": r"/leads/[0-9a-f-]+$", "times": 1})
    with captured("json", logger="") as stream:
        interaction = bot.command(f'show "Spring leads" {number}')
        reply = bot.driver.replies(interaction, count=1)[0]
    assert "lead-12" in texts(reply)
    output = stream.getvalue()
    assert number not in output and number[1:] not in output
    lines = json_lines(stream)
    (done,) = [line for line in lines if line["message"].startswith("/lead show")]
    assert done["lead_uid"] == "•" * 11 + number[-2:]
    (retry,) = [line for line in lines if line["logger"] == "babelforce.client" and "retry 1" in line["message"]]
    assert retry["request_id"] == done["request_id"] == f"command:{interaction.trigger_id}"
    assert retry["subcommand"] == "show" and retry["user"] == "U0SUPERVISOR"
