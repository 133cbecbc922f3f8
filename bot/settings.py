"""The bot's own settings (Slack side and behaviour), from the environment and `.env`.

babelforce's settings live in `babelforce.config.BabelforceSettings`; both are checked at start-up, and every
problem is reported at once, naming the variable and never its value.
"""

from __future__ import annotations

from typing import Literal

import phonenumbers
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from babelforce.config import BabelforceSettings
from babelforce.errors import ConfigurationError

Mode = Literal["http", "socket", "console"]


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

    @field_validator(
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "slack_api_url",
        "leadbot_default_region",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("leadbot_default_region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("must be a two-letter country code such as DE, GB or US")
        return region

    @field_validator("leadbot_log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

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
        if problems:
            raise StartupError(problems)


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
