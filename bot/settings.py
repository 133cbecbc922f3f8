"""The bot's own settings (Slack side and behaviour), from the environment and `.env`.

babelforce's settings live in `babelforce.config.BabelforceSettings`; both are checked at start-up, and every
problem is reported at once, naming the variable and never its value.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import phonenumbers
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from babelforce.config import BabelforceSettings
from babelforce.errors import ConfigurationError

from .audit import store_kind
from .retention import DEFAULT_RETENTION_DAYS

Mode = Literal["http", "socket", "console"]

#: A set of Slack ids from one variable: comma- and/or whitespace-separated ("U1,S2", "U1 S2", "U1, S2").
#: NoDecode: pydantic-settings would otherwise read a set-typed variable as JSON.
IdSet = Annotated[frozenset[str], NoDecode]

#: Shape of each kind of Slack id, and how to say what was expected when a value does not match.
PERSON_ID = re.compile(r"^(?:[UW][A-Z0-9]{2,}|S[A-Z0-9]{2,})$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
TEAM_ID = re.compile(r"^[TE][A-Z0-9]{2,}$")
PERSON_EXPECTED = "a Slack user id (U…/W…) or user group id (S…); a user name or @handle does not work"
CHANNEL_EXPECTED = "a Slack channel id (C…, G… or D…, e.g. from the channel's details); a #name does not work"
TEAM_EXPECTED = "a Slack workspace id (T…) or, for an org-wide install, an enterprise id (E…)"
_ID_SEPARATORS = re.compile(r"[\s,]+")
#: LEADBOT_AUDIT_RETENTION_DAYS at most: a century (longer is "forever", which is 0).
RETENTION_DAYS_MAX = 36_500


class StartupError(Exception):
    """Settings that keep the bot from starting; str() lists every problem, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class BotSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str | None = None
    leadbot_allow_all_writers: bool = False
    leadbot_default_region: str | None = None
    leadbot_host: str = "0.0.0.0"  # Slack must reach the bot; put it behind a TLS proxy
    leadbot_port: int = Field(default=3000, ge=0, le=65535)
    leadbot_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    leadbot_log_format: Literal["text", "json"] = "text"  # json: one object per line (bot.logs)
    # Socket Mode's /metrics (HTTP mode serves it on its own port): None, no metrics server
    leadbot_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    leadbot_metrics_host: str = "127.0.0.1"  # loopback: /metrics has no password; 0.0.0.0 for a scraper elsewhere
    leadbot_writers: IdSet = frozenset()  # U…/W… users and S… user groups who may add, rank, set and undo
    leadbot_readers: IdSet = frozenset()  # who may show/history/help; empty: everyone in an accepted workspace
    leadbot_channels: IdSet = frozenset()  # channels the bot answers in; empty: any
    leadbot_team_id: IdSet = frozenset()  # accepted workspace (T…) and enterprise (E…) ids; empty: any
    # the audit store: a SQLite file's path (or sqlite:///path) or a postgresql:// URL; None: data/leadbot.db
    leadbot_db: str | None = None
    leadbot_audit_channel: str | None = None  # a channel id that gets one line per change
    # days an audit record is kept before the daily purge removes it; 0: kept forever (bot.retention)
    leadbot_audit_retention_days: int = DEFAULT_RETENTION_DAYS
    leadbot_alert_channel: str | None = None  # a channel id that gets campaign alerts; None: no alerts
    leadbot_alert_interval: float = Field(default=60.0, ge=10, le=3600)  # seconds between two looks at the campaigns
    leadbot_alert_hopper_min: int = Field(default=5, ge=1, le=100_000)  # alert when fewer leads are loaded
    # seconds the process watching the campaigns holds its lease: when it dies, another sharing LEADBOT_DB takes over
    leadbot_alert_lease: float = Field(default=30.0, ge=1, le=600)
    leadbot_find_max_lists: int = Field(default=50, ge=1, le=1000)  # lists /lead find searches at most

    @field_validator(
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "slack_api_url",
        "leadbot_default_region",
        "leadbot_db",
        "leadbot_audit_channel",
        "leadbot_alert_channel",
        "leadbot_metrics_port",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("leadbot_db")
    @classmethod
    def _known_store(cls, value: str | None) -> str | None:
        """A URL names its database by its scheme: one leadbot has no store for is refused, never taken for a
        folder (postgresql://… once became a local folder named "postgresql:"). The message names the scheme only."""
        if value is not None:
            store_kind(value)  # ValueError: one sentence
        return value

    @field_validator("leadbot_audit_retention_days", mode="before")
    @classmethod
    def _retention_days(cls, value: object) -> object:
        """A whole number of days, 0 (keep forever) to RETENTION_DAYS_MAX, in one sentence otherwise."""
        text = str(value).strip()
        if isinstance(value, bool) or not (text.isdigit() and text.isascii()) or int(text) > RETENTION_DAYS_MAX:
            raise ValueError(
                f"must be a whole number of days from 0 to {RETENTION_DAYS_MAX} (0 keeps every audit record forever)"
            )
        return int(text)

    @field_validator("leadbot_default_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("must be a two-letter country code such as DE, GB or US")
        return region

    @field_validator("leadbot_writers", "leadbot_readers", "leadbot_channels", "leadbot_team_id", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part for part in _ID_SEPARATORS.split(value) if part)
        return value

    @field_validator("leadbot_writers", "leadbot_readers")
    @classmethod
    def _person_ids(cls, value: frozenset[str]) -> frozenset[str]:
        return _checked_ids(value, PERSON_ID, PERSON_EXPECTED)

    @field_validator("leadbot_channels")
    @classmethod
    def _channel_ids(cls, value: frozenset[str]) -> frozenset[str]:
        return _checked_ids(value, CHANNEL_ID, CHANNEL_EXPECTED)

    @field_validator("leadbot_team_id")
    @classmethod
    def _team_ids(cls, value: frozenset[str]) -> frozenset[str]:
        return _checked_ids(value, TEAM_ID, TEAM_EXPECTED)

    @field_validator("leadbot_audit_channel", "leadbot_alert_channel")
    @classmethod
    def _one_channel(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return next(iter(_checked_ids(frozenset({value.strip()}), CHANNEL_ID, CHANNEL_EXPECTED)))

    @field_validator("leadbot_log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("leadbot_log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    def check(self, mode: Mode) -> None:
        """Raise StartupError naming every variable the mode needs and lacks."""
        problems: list[str] = []
        if mode != "console":
            if self.slack_bot_token is None:
                problems.append("SLACK_BOT_TOKEN is not set: the bot token (xoxb-...) from the app's OAuth page.")
            elif not self.slack_bot_token.get_secret_value().startswith("xoxb-"):
                problems.append("SLACK_BOT_TOKEN must be a bot token starting with xoxb-.")
        if mode == "http" and self.slack_signing_secret is None:
            problems.append(
                "SLACK_SIGNING_SECRET is not set: HTTP mode verifies every request with the app's signing secret."
            )
        if mode == "socket":
            if self.slack_app_token is None:
                problems.append("SLACK_APP_TOKEN is not set: Socket Mode needs an app-level token (xapp-...).")
            elif not self.slack_app_token.get_secret_value().startswith("xapp-"):
                problems.append("SLACK_APP_TOKEN must be an app-level token starting with xapp-.")
        if mode in ("http", "socket") and not self.leadbot_writers and not self.leadbot_allow_all_writers:
            problems.append(
                "LEADBOT_WRITERS is not set: list the Slack user ids (U…) or user group ids (S…) allowed to change "
                "leads, or set LEADBOT_ALLOW_ALL_WRITERS=true to let everyone in the workspace write."
            )
        if problems:
            raise StartupError(problems)


def _checked_ids(ids: frozenset[str], shape: re.Pattern[str], expected: str) -> frozenset[str]:
    """`ids` when each matches `shape`, else ValueError naming the bad ones (Slack ids are not secrets; anything
    that looks like a token pasted by mistake is described, not shown) and what is expected."""
    bad = sorted(item for item in ids if not shape.match(item))
    if not bad:
        return ids
    shown = ", ".join(_describe(item) for item in bad)
    if len(bad) == 1:
        raise ValueError(f"{shown} is not {expected}")
    raise ValueError(f"{shown}: each must be {expected}")


def _describe(item: str) -> str:
    if item.lower().startswith(("xox", "xapp")) or len(item) > 40:
        return "an entry that looks like a token or secret (not shown)"
    return repr(item)


def load_settings() -> BotSettings:
    """BotSettings from the environment; invalid values raise StartupError naming the variable, not the value."""
    try:
        return BotSettings()
    except ValidationError as invalid:
        raise StartupError(_problems(invalid)) from None


def load_babelforce_settings(*, required: bool = True) -> BabelforceSettings | None:
    """BabelforceSettings, checked: None when nothing is configured and `required` is False (console sandbox)."""
    try:
        settings = BabelforceSettings()
    except ValidationError as invalid:
        raise StartupError(_problems(invalid, prefix="BABELFORCE_")) from None
    configured = any(
        getattr(settings, name) is not None
        for name in ("base_url", "env", "client_id", "client_secret", "username", "password", "access_token")
    )
    if not configured and not required:
        return None
    problems = []
    for check in (settings.resolved_base_url, settings.auth_mode):
        try:
            check()
        except ConfigurationError as bad:
            problems.append(bad.message)
    if problems:
        raise StartupError(problems)
    return settings


def _problems(invalid: ValidationError, prefix: str = "") -> list[str]:
    """One line per invalid variable, from pydantic's errors but without the offending input (it may be a secret)."""
    lines = []
    for error in invalid.errors(include_input=False, include_url=False):
        name = (prefix + "_".join(str(part) for part in error["loc"])).upper()
        lines.append(f"{name} is invalid: {error['msg'].removeprefix('Value error, ')}.")
    return lines
