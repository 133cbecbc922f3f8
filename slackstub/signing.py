"""Signing requests the way Slack does (v0 HMAC-SHA256 over `v0:{timestamp}:{body}`)."""

from __future__ import annotations

import time

from slack_sdk.signature import SignatureVerifier

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"  # the Events API


def signed_headers(
    signing_secret: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    content_type: str = FORM_CONTENT_TYPE,
) -> dict[str, str]:
    """The headers Slack puts on a request to the app: `X-Slack-Request-Timestamp`, `X-Slack-Signature` and
    `Content-Type`. `timestamp` defaults to now; pass an old one to build a stale request."""
    ts = str(int(time.time()) if timestamp is None else int(timestamp))
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None  # only None when timestamp is None
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }
