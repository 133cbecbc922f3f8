"""Pure helpers of the bot's edge: masking phone numbers in logs, and which libraries may log at DEBUG."""

from __future__ import annotations

import logging

import pytest

from bot.core import mask
from bot.run import CHATTY_LOGGERS, configure_logging


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+4915100000040", "•••••••••••40"),
        ("+49-151-0000-0040", "•••••••••••40"),
        ("+49 1510 000 0040", "•••••••••••40"),
        ("0151-2345-6789", "••••••••••89"),
        ("(030) 1234567", "(••••••••67"),  # the digits are what matters
        ("lead-40", "lead-40"),
        ("uuid_100", "uuid_100"),
        ("Spring leads", "Spring leads"),
        ("aa220078503dc86b01504585279e6933", "aa220078503dc86b01504585279e6933"),  # a lead id is not a number
        ("12345", "12345"),  # too short to be a phone number
    ],
)
def test_mask_hides_phone_numbers_however_they_are_written(text: str, expected: str) -> None:
    assert mask(text) == expected


def test_debug_logging_keeps_slack_and_http_libraries_at_info() -> None:
    saved = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    try:
        configure_logging("DEBUG")
        for name in ("slack_sdk", "slack_bolt", "httpcore"):
            assert logging.getLogger(name).getEffectiveLevel() == logging.INFO, name
        configure_logging("WARNING")
        assert logging.getLogger("slack_sdk").getEffectiveLevel() == logging.WARNING
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
