"""Settings and defaults for the babelforce client, in one place.

Every knob can come from the environment (or `.env`) with the `BABELFORCE_` prefix; see `.env.example`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigurationError

DEFAULT_PASSWORD_CLIENT_ID = "manager"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """connect/read bound single socket operations; `deadline` bounds a whole call, retries included, so a
    server that trickles one byte at a time cannot hold a command hostage."""

    connect: float = 3.0
    read: float = 10.0
    deadline: float = 20.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries for idempotent calls (GET/PUT/DELETE): full-jitter exponential backoff, Retry-After honoured."""

    max_retries: int = 2
    backoff_base: float = 0.25
    backoff_cap: float = 10.0
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})


_TIMEOUTS = Timeouts()
_RETRY = RetryPolicy()

AuthMode = Literal["access_token", "password", "client_credentials"]


class BabelforceSettings(BaseSettings):
    """What the client needs to reach babelforce; secrets are SecretStr so they never print."""

    model_config = SettingsConfigDict(env_prefix="BABELFORCE_", env_file=".env", extra="ignore")

    base_url: str | None = None
    env: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    access_token: SecretStr | None = None

    connect_timeout: float = Field(default=_TIMEOUTS.connect, gt=0, le=60)
    read_timeout: float = Field(default=_TIMEOUTS.read, gt=0, le=300)
    deadline: float = Field(default=_TIMEOUTS.deadline, gt=0, le=600)
    max_retries: int = Field(default=_RETRY.max_retries, ge=0, le=10)
    backoff_base: float = Field(default=_RETRY.backoff_base, ge=0, le=60)
    backoff_cap: float = Field(default=_RETRY.backoff_cap, ge=0, le=600)

    @field_validator("base_url", "env", "client_id", "username", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("client_secret", "password", "access_token", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def resolved_base_url(self) -> str:
        """BABELFORCE_BASE_URL when set, else https://{BABELFORCE_ENV}.babelforce.com."""
        if self.base_url:
            parts = urlsplit(self.base_url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ConfigurationError(
                    "BABELFORCE_BASE_URL must be an http(s) URL such as https://services.babelforce.com."
                )
            return self.base_url.rstrip("/")
        if self.env:
            return f"https://{self.env.strip()}.babelforce.com"
        raise ConfigurationError("Set BABELFORCE_BASE_URL, or BABELFORCE_ENV (e.g. services), to reach babelforce.")

    def auth_mode(self) -> AuthMode:
        """Which credentials to use: a static token wins, then a user login, then client credentials."""
        if self.access_token:
            return "access_token"
        if self.username or self.password:
            if not (self.username and self.password):
                raise ConfigurationError("Set both BABELFORCE_USERNAME and BABELFORCE_PASSWORD for a user login.")
            return "password"
        if self.client_id and self.client_secret:
            return "client_credentials"
        if self.client_id or self.client_secret:
            raise ConfigurationError(
                "Set both BABELFORCE_CLIENT_ID and BABELFORCE_CLIENT_SECRET for client-credentials login."
            )
        raise ConfigurationError(
            "No babelforce credentials: set BABELFORCE_CLIENT_ID and BABELFORCE_CLIENT_SECRET, or "
            "BABELFORCE_USERNAME and BABELFORCE_PASSWORD, or BABELFORCE_ACCESS_TOKEN."
        )

    def timeouts(self) -> Timeouts:
        return Timeouts(connect=self.connect_timeout, read=self.read_timeout, deadline=self.deadline)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_retries=self.max_retries, backoff_base=self.backoff_base, backoff_cap=self.backoff_cap)
