"""manifest.yml: a Slack app manifest that matches what the code does, and asks for nothing more."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.app import EVENTS_PATH
from bot.listeners.commands import COMMAND
from commands import registry

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())

#: Bot scope each Slack Web API method needs (api.slack.com method pages); None: the method needs no scope.
SCOPE_OF_METHOD = {
    "views_open": None,
    "views_update": None,
    "views_push": None,
    "chat_postEphemeral": "chat:write",
    # the audit line per change in LEADBOT_AUDIT_CHANNEL, and a reply in the user's DM with the app
    "chat_postMessage": "chat:write",
    "conversations_open": "im:write",  # opening that DM (a bot token needs im:write for conversations.open)
    "usergroups_users_list": "usergroups:read",  # only when LEADBOT_WRITERS/READERS name user groups (S...)
}
#: Scopes the code needs only under some settings: the manifest must say when, in a comment right above them.
CONDITIONAL_SCOPES = {"usergroups:read": ("LEADBOT_WRITERS", "LEADBOT_READERS")}


def _web_api_methods_used() -> set[str]:
    """Every `client.<method>(` call in the bot's code, i.e. every Slack Web API method it can call."""
    used: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        used |= set(
            re.findall(r"\bclient\.(views_\w+|chat_\w+|users_\w+|conversations_\w+|usergroups_\w+)\(", path.read_text())
        )
    return used


def test_the_lead_command_is_declared_with_description_and_usage_hint() -> None:
    commands = MANIFEST["features"]["slash_commands"]
    assert [command["command"] for command in commands] == [COMMAND]
    lead = commands[0]
    assert lead["description"] and len(lead["description"]) <= 100
    assert "add|rank|show|set|history|remove" in lead["usage_hint"]
    assert lead["url"].endswith(EVENTS_PATH)


def test_bot_scopes_are_exactly_the_ones_the_code_uses() -> None:
    used_methods = _web_api_methods_used()
    assert used_methods, "no Slack Web API call found: the scan is broken"
    unknown = used_methods - SCOPE_OF_METHOD.keys()
    assert not unknown, f"add the scope of {unknown} to SCOPE_OF_METHOD and the manifest"
    needed = {"commands"} | {SCOPE_OF_METHOD[method] for method in used_methods if SCOPE_OF_METHOD[method]}
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == needed


def test_conditional_scopes_say_when_they_are_needed() -> None:
    lines = (ROOT / "manifest.yml").read_text().splitlines()
    for scope, variables in CONDITIONAL_SCOPES.items():
        index = next(i for i, line in enumerate(lines) if line.strip() == f"- {scope}")
        comment = []
        for line in reversed(lines[:index]):
            if not line.strip().startswith("#"):
                break
            comment.append(line)
        assert comment, f"{scope} has no comment saying when it is needed"
        for variable in variables:
            assert variable in " ".join(comment), f"the comment above {scope} does not name {variable}"


def test_interactivity_and_options_reach_the_events_path_and_socket_mode_is_on() -> None:
    settings = MANIFEST["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith(EVENTS_PATH)
    assert settings["interactivity"]["message_menu_options_url"].endswith(EVENTS_PATH)
    assert settings["socket_mode_enabled"] is True


def test_display_information_and_bot_user_are_present() -> None:
    assert MANIFEST["display_information"]["name"] == "leadbot"
    assert len(MANIFEST["display_information"]["description"]) <= 140
    assert MANIFEST["features"]["bot_user"]["display_name"] == "leadbot"


def test_the_usage_hint_and_the_readme_name_every_registered_subcommand() -> None:
    """A registered subcommand missing from Slack's hint or README's command table is a doc bug: caught here."""
    hint = MANIFEST["features"]["slash_commands"][0]["usage_hint"]
    hinted = set(re.findall(r"[a-z]+", hint))
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Using `/lead`") :]
    registered = registry.all_subcommands()
    assert registered, "no subcommand registered: the check is broken"
    for name, spec in registered.items():
        assert name in hinted, f"manifest.yml's usage_hint does not name {name}"
        cell = spec.usage.replace("|", "\\|")  # a pipe in a table cell is escaped, even in code (GFM)
        assert f"| `{cell}` |" in table, f"README's command table has no row for {spec.usage}"
    assert "help" in hinted or "help" in hint


def test_the_messages_tab_shows_answers_sent_to_a_dm_and_takes_no_messages() -> None:
    """bot/slack_edge.deliver answers in the user's DM with the app where leadbot is not a channel member: the
    Messages tab must be on for the user to see it, and read-only, since leadbot reads no messages."""
    home = MANIFEST["features"]["app_home"]
    assert home["messages_tab_enabled"] is True
    assert home["messages_tab_read_only_enabled"] is True
