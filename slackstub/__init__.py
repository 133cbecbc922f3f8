"""A local stand-in for Slack, used by the end-to-end tests and the local console; not production code.

`SlackStub` plays Slack's servers (Web API, response_urls) on a loopback port and records what the bot sends;
`SlackDriver` plays Slack's side of the conversation towards the bot (signed slash commands, modal submissions,
option look-ups, button clicks); `render_*` turn Block Kit into readable text for the console.
"""

from slackstub.driver import DriverError, Interaction, SlackDriver
from slackstub.render import render_blocks, render_message, render_view
from slackstub.server import NoAnswer, Recorded, Shown, SlackStub, SlackStubError
from slackstub.signing import signed_headers

__all__ = [
    "DriverError",
    "Interaction",
    "NoAnswer",
    "Recorded",
    "Shown",
    "SlackDriver",
    "SlackStub",
    "SlackStubError",
    "render_blocks",
    "render_message",
    "render_view",
    "signed_headers",
]
