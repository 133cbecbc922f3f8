"""One error tree for everything the babelforce module raises.

`str(error)` is always one sentence a supervisor can act on. It never contains a token, a password or a client
secret: messages are built from ids, names and status codes only, and a server's own message is trimmed to one
line, with any credential it echoes removed, before it is quoted.

Besides its sentence every error carries, as attributes, what a caller needs to word its own (None when it does
not apply or is not known):

    operation     what the module was asked to do: "list_lists", "get_list", "find_list", "list_leads",
                  "export_csv", "get_lead", "find_lead", "add_lead", "update_lead", "delete_lead",
                  "list_campaigns", "get_campaign", "get_hopper", or "token" (logging in, on behalf of any call)
    status_code   the HTTP status babelforce answered with, when an answer came
    reason        babelforce's own reason (the message, plus its detail when that says more; else the detail /
                  error of its JSON body), one trimmed line
    list_id, lead_id, campaign_id
                  the resources the call was about (normalized ids)
    uid           the lead uid the call was about (an add, a uid change, a lookup by uid)

    BabelforceError
    ├── ConfigurationError            settings missing or contradictory
    ├── AuthenticationError           the token endpoint refused our credentials
    ├── APIConnectionError            babelforce could not be reached, or the connection dropped
    │   └── APITimeoutError           no complete answer within the deadline (carries timeout)
    ├── APIStatusError                babelforce answered with an error status
    │   ├── InvalidRequestError       400 / 422, or a 2xx whose body says "success": false (status_code is then
    │   │                             that 2xx): babelforce did not do it (carries the server's reason)
    │   ├── UnauthorizedError         401 after one token refresh (also an AuthenticationError)
    │   ├── PermissionDeniedError     403
    │   ├── NotFoundError             404, or a lookup that found nothing (carries resource)
    │   ├── ConflictError             409, e.g. a duplicate uid
    │   ├── RateLimitedError          429 (carries retry_after)
    │   └── ServerError               5xx, or a 2xx answer that could not be read (status_code < 500 then)
    ├── AmbiguousMatchError           a name or phone number matches more than one thing (carries candidates)
    ├── AddNotCreatedError            an add's answer was lost and the lead is not there: nothing was created
    └── AddOutcomeUnknownError        an add's answer was lost and the lookup failed too
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

#: What a NotFoundError or AmbiguousMatchError is about.
Resource = Literal["list", "lead", "campaign"]


class BabelforceError(Exception):
    """Base of every error the module raises; `message` is the one-sentence explanation."""

    operation: str | None = None
    status_code: int | None = None
    reason: str | None = None
    list_id: str | None = None
    lead_id: str | None = None
    campaign_id: str | None = None
    uid: str | None = None

    def __init__(
        self,
        message: str,
        *,
        operation: str | None = None,
        status_code: int | None = None,
        reason: str | None = None,
        list_id: str | None = None,
        lead_id: str | None = None,
        campaign_id: str | None = None,
        uid: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.status_code = status_code
        self.reason = reason
        self.list_id = list_id
        self.lead_id = lead_id
        self.campaign_id = campaign_id
        self.uid = uid


class ConfigurationError(BabelforceError):
    pass


class AuthenticationError(BabelforceError):
    """Logging in failed (operation "token"); `status_code` and `reason` are the token endpoint's when it answered."""


class APIConnectionError(BabelforceError):
    """The request failed on the wire. `may_have_reached_server` is False only when no byte was sent."""

    def __init__(self, message: str, *, may_have_reached_server: bool = True, **context: Any) -> None:
        super().__init__(message, **context)
        self.may_have_reached_server = may_have_reached_server


class APITimeoutError(APIConnectionError):
    """No complete answer; `timeout` is how many seconds were waited (the deadline, or the connect/read timeout)."""

    def __init__(self, message: str, *, timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.timeout = timeout


class APIStatusError(BabelforceError):
    status_code: int

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        method: str = "",
        path: str = "",
        server_message: str | None = None,
        **context: Any,
    ) -> None:
        context.setdefault("reason", server_message)
        super().__init__(message, status_code=status_code, **context)
        self.method = method
        self.path = path

    @property
    def server_message(self) -> str | None:
        """The former name of `reason`."""
        return self.reason


class InvalidRequestError(APIStatusError):
    pass


class UnauthorizedError(APIStatusError, AuthenticationError):
    pass


class PermissionDeniedError(APIStatusError):
    pass


class NotFoundError(APIStatusError):
    """404 from babelforce, or a lookup (by name, uid or number) that found nothing (status_code 404 too).

    `resource` says what is missing ("list", "lead" or "campaign"; None when babelforce's 404 was not about one),
    `resource_id` its id when known: a 404 to a lead's URL means the lead, to a list's or its leads' URL the list.
    """

    def __init__(self, message: str, *, resource: Resource | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.resource = resource

    @property
    def resource_id(self) -> str | None:
        return getattr(self, f"{self.resource}_id") if self.resource is not None else None


class ConflictError(APIStatusError):
    pass


class RateLimitedError(APIStatusError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """A 5xx, or an answer that could not be read. `answered` is False when no answer of babelforce's own came back
    (a gateway's HTML page, a 2xx with a body that is not babelforce's JSON): the request had left, so a write may
    have been carried out all the same, and only reading the lead back can tell."""

    def __init__(self, message: str, *, answered: bool = True, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.answered = answered


class AmbiguousMatchError(BabelforceError):
    """More than one candidate; `candidates` holds their ids so a caller can ask the user to pick.

    `resource` is what matched more than once ("list" or "lead"), `reference` the name or number asked for.
    """

    def __init__(
        self,
        message: str,
        *,
        candidates: Sequence[str],
        resource: Resource | None = None,
        reference: str | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.candidates = tuple(candidates)
        self.resource = resource
        self.reference = reference


class AddNotCreatedError(BabelforceError):
    """The add may have been sent, its answer was lost (`lost` says how), and a fresh lookup shows no such lead."""

    def __init__(self, message: str, *, lost: BabelforceError | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.lost = lost


class AddOutcomeUnknownError(BabelforceError):
    """The add may have been sent, its answer was lost (`lost`), and the lookup to find out failed as well (`check`;
    an APITimeoutError when the lookup ran out of its own short budget)."""

    def __init__(
        self, message: str, *, lost: BabelforceError | None = None, check: BabelforceError | None = None, **context: Any
    ) -> None:
        super().__init__(message, **context)
        self.lost = lost
        self.check = check


def short_reason(error: BabelforceError) -> str:
    """A few words on why a call failed, to quote inside another message ("HTTP 503", "no answer in time")."""
    if isinstance(error, APITimeoutError):
        return "no answer in time"
    if isinstance(error, APIConnectionError):
        return "the connection failed"
    if isinstance(error, APIStatusError):
        if error.status_code < 400:  # a 2xx whose body said "success": false
            return "babelforce reported a failure"
        return f"HTTP {error.status_code}"
    return type(error).__name__
