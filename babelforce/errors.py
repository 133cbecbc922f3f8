"""One error tree for everything the babelforce module raises.

`str(error)` is always one sentence a supervisor can act on. It never contains a token, a password or a client
secret: messages are built from ids, names and status codes only, and a server's own message is trimmed to one
line before it is quoted.

    BabelforceError
    ├── ConfigurationError            settings missing or contradictory
    ├── AuthenticationError           the token endpoint refused our credentials
    ├── APIConnectionError            babelforce could not be reached, or the connection dropped
    │   └── APITimeoutError           no complete answer within the deadline
    ├── APIStatusError                babelforce answered with an error status
    │   ├── InvalidRequestError       400 / 422 (carries the server's message)
    │   ├── UnauthorizedError         401 after one token refresh (also an AuthenticationError)
    │   ├── PermissionDeniedError     403
    │   ├── NotFoundError             404, or a lookup that found nothing
    │   ├── ConflictError             409, e.g. a duplicate uid
    │   ├── RateLimitedError          429 (carries retry_after)
    │   └── ServerError               5xx
    ├── AmbiguousMatchError           a name or phone number matches more than one thing
    ├── AddNotCreatedError            an add's answer was lost and the lead is not there: nothing was created
    └── AddOutcomeUnknownError        an add's answer was lost and the lookup failed too
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class BabelforceError(Exception):
    """Base of every error the module raises; `message` is the one-sentence explanation."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(BabelforceError):
    pass


class AuthenticationError(BabelforceError):
    pass


class APIConnectionError(BabelforceError):
    """The request failed on the wire. `may_have_reached_server` is False only when no byte was sent."""

    def __init__(self, message: str, *, may_have_reached_server: bool = True) -> None:
        super().__init__(message)
        self.may_have_reached_server = may_have_reached_server


class APITimeoutError(APIConnectionError):
    pass


class APIStatusError(BabelforceError):
    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        method: str,
        path: str,
        server_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.method = method
        self.path = path
        self.server_message = server_message


class InvalidRequestError(APIStatusError):
    pass


class UnauthorizedError(APIStatusError, AuthenticationError):
    pass


class PermissionDeniedError(APIStatusError):
    pass


class NotFoundError(APIStatusError):
    """404 from babelforce, or a lookup (by name, uid or number) that found nothing (status_code 404 too)."""


class ConflictError(APIStatusError):
    pass


class RateLimitedError(APIStatusError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    pass


class AmbiguousMatchError(BabelforceError):
    """More than one candidate; `candidates` holds their ids so a caller can ask the user to pick."""

    def __init__(self, message: str, *, candidates: Sequence[str]) -> None:
        super().__init__(message)
        self.candidates = tuple(candidates)


class AddNotCreatedError(BabelforceError):
    """The add may have been sent, its answer was lost, and a fresh lookup shows no such lead."""


class AddOutcomeUnknownError(BabelforceError):
    """The add may have been sent, its answer was lost, and the lookup to find out failed as well."""


def short_reason(error: BabelforceError) -> str:
    """A few words on why a call failed, to quote inside another message ("HTTP 503", "no answer in time")."""
    if isinstance(error, APITimeoutError):
        return "no answer in time"
    if isinstance(error, APIConnectionError):
        return "the connection failed"
    if isinstance(error, APIStatusError):
        return f"HTTP {error.status_code}"
    return type(error).__name__
