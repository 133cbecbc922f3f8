"""Bearer tokens for babelforce: fetched lazily, reused until shortly before expiry, refreshed single-flight.

Fifty calls that find the token expired at the same moment cause one `POST /oauth/token`: the first takes the
lock and fetches, the rest wait and reuse its result. If that fetch fails, the waiters share its error instead of
each trying again: fifty refused logins in a burst could lock the babelforce user out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import SecretStr

from .config import DEFAULT_PASSWORD_CLIENT_ID, BabelforceSettings
from .errors import AuthenticationError, BabelforceError
from .models import Token

log = logging.getLogger(__name__)

#: Lifetime assumed when the token response has no `expires_in`.
DEFAULT_TOKEN_TTL = 3600.0
#: Refresh this long before expiry (at most a tenth of the lifetime), so no call starts with a dying token.
REFRESH_MARGIN = 60.0


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    client_secret: SecretStr

    def form(self) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret.get_secret_value(),
        }


@dataclass(frozen=True, slots=True)
class PasswordLogin:
    username: str
    password: SecretStr
    client_id: str = DEFAULT_PASSWORD_CLIENT_ID
    client_secret: SecretStr | None = None

    def form(self) -> dict[str, str]:
        form = {
            "grant_type": "password",
            "username": self.username,
            "password": self.password.get_secret_value(),
            "client_id": self.client_id,
        }
        if self.client_secret is not None:
            form["client_secret"] = self.client_secret.get_secret_value()
        return form


@dataclass(frozen=True, slots=True)
class StaticToken:
    """A token issued elsewhere (BABELFORCE_ACCESS_TOKEN): used as is, never refreshed."""

    token: SecretStr


Credentials = ClientCredentials | PasswordLogin | StaticToken
TokenFetcher = Callable[[dict[str, str]], Awaitable[Token]]


def credentials_from_settings(settings: BabelforceSettings) -> Credentials:
    mode = settings.auth_mode()
    if mode == "access_token":
        assert settings.access_token is not None
        return StaticToken(settings.access_token)
    if mode == "password":
        assert settings.username is not None and settings.password is not None
        return PasswordLogin(
            username=settings.username,
            password=settings.password,
            client_id=settings.client_id or DEFAULT_PASSWORD_CLIENT_ID,
            client_secret=settings.client_secret,
        )
    assert settings.client_id is not None and settings.client_secret is not None
    return ClientCredentials(settings.client_id, settings.client_secret)


@dataclass(slots=True)
class _Held:
    access_token: str
    refresh_token: str | None
    expires_at: float


class TokenManager:
    def __init__(self, credentials: Credentials, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._credentials = credentials
        self._clock = clock
        self._held: _Held | None = None
        self._refresh_token: str | None = None
        self._lock = asyncio.Lock()
        self._fetches_done = 0  # tells a waiter whether a fetch ended while it waited for the lock
        self._last_failure: BabelforceError | None = None

    @property
    def can_refresh(self) -> bool:
        return not isinstance(self._credentials, StaticToken)

    async def get(self, fetch: TokenFetcher) -> str:
        """A token valid for at least the refresh margin; fetches one (once, for all waiters) if needed."""
        if isinstance(self._credentials, StaticToken):
            return self._credentials.token.get_secret_value()
        held = self._held
        if held is not None and self._clock() < held.expires_at:
            return held.access_token
        done_before = self._fetches_done
        async with self._lock:
            held = self._held
            if held is not None and self._clock() < held.expires_at:
                return held.access_token
            if self._fetches_done != done_before and self._last_failure is not None:
                raise self._last_failure  # the fetch we waited for failed: its answer is ours too
            self._last_failure = None  # a cancelled fetch leaves none, so its waiters fetch again
            try:
                token = await self._obtain(fetch)
            except BabelforceError as failure:
                self._last_failure = failure
                raise
            finally:
                self._fetches_done += 1
            ttl = float(token.expires_in) if token.expires_in else DEFAULT_TOKEN_TTL
            margin = min(REFRESH_MARGIN, ttl / 10)
            refresh = token.refresh_token.get_secret_value() if token.refresh_token else None
            self._refresh_token = refresh or self._refresh_token
            self._held = _Held(token.access_token.get_secret_value(), refresh, self._clock() + ttl - margin)
            log.debug("babelforce token obtained (valid %.0f s)", ttl)
            return self._held.access_token

    def invalidate(self, access_token: str) -> bool:
        """Forget `access_token` after a 401 so the next get() fetches anew. False when it cannot be refreshed."""
        if not self.can_refresh:
            return False
        if self._held is not None and self._held.access_token == access_token:
            self._held = None
        return True

    async def _obtain(self, fetch: TokenFetcher) -> Token:
        """Use the refresh token when there is one; if babelforce refuses it, log in afresh once."""
        if self._refresh_token is not None:
            refresh_form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token}
            if isinstance(self._credentials, PasswordLogin | ClientCredentials):
                refresh_form["client_id"] = self._credentials.client_id
                if self._credentials.client_secret is not None:
                    refresh_form["client_secret"] = self._credentials.client_secret.get_secret_value()
            self._refresh_token = None  # rotated on every use: never present it twice
            try:
                return await fetch(refresh_form)
            except AuthenticationError:
                log.info("babelforce refused the refresh token; logging in again")
        assert not isinstance(self._credentials, StaticToken)
        return await fetch(self._credentials.form())
