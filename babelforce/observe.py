"""A neutral hook on the client's traffic: who listens (the bot's metrics, a test) is not this module's business.

`BabelforceClient(observer=...)` (or `client.observer = ...`) tells the observer about every HTTP request it sends,
every retry and every token it fetches. The observer sees only names this module chose (the operation, a status,
a grant type), never ids, numbers, URLs or credentials.
"""

from __future__ import annotations

from typing import Protocol


class CallObserver(Protocol):
    """Told about the client's traffic. Any object with these three methods will do (a subclass inherits methods
    that do nothing, and overrides what it needs). They run on the event loop in the middle of a call: they must be
    quick. One that raises is logged and ignored; the call goes on."""

    def on_response(self, operation: str, status: str, seconds: float) -> None:
        """One HTTP request ended: `operation` is the client's name for the call ("get_lead", "update_lead",
        "export_csv", ..., "token" for a token fetch); `status` the HTTP status code ("200", "404", "503"), or,
        when no answer came, "timeout", "connect_error", "network_error", "cancelled" (the call's deadline ran
        out, or leadbot stopped) or "error"; `seconds` from sending to the answer's headers."""

    def on_retry(self, operation: str, reason: str) -> None:
        """A request of `operation` is sent again: `reason` is the status that caused it ("429", "503", "401" for
        the one retry after a token refresh) or the failure ("timeout", "connect_error", "network_error")."""

    def on_token(self, grant: str, result: str) -> None:
        """A token was fetched from /oauth/token: `grant` is "client_credentials", "password" or "refresh_token";
        `result` "ok", "refused" (babelforce said no to the credentials) or "error" (no usable answer)."""
