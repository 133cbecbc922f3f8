"""Bolt listeners, one module per listener kind; each `register(app)` wires Slack ids to plain functions."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from . import actions, commands, home, options, views


def register(app: AsyncApp) -> None:
    commands.register(app)
    views.register(app)
    options.register(app)
    home.register(app)  # before actions: an Undo clicked on the Home tab is answered there
    actions.register(app)
