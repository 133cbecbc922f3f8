"""`leadbot doctor` against the babelforce sandbox and the Slack stand-in: every check passes on a good installation,
and each broken part gives a ✗ line saying what to do, and exit status 1. Secrets never reach the output.

Most tests run the command in this process (bot.cli.main, settings from a clean environment); one runs it as a real
process, with known secrets, to show none of them is printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from babelforce import lookup
from babelforce.lookup import IndexedLead
from babelforce.models import Lead
from bot import cli
from bot.doctor_checks import ALWAYS_NEEDED_SCOPES, CHECKS, GROUP_SCOPE, changed_fields, disagreements, write_check
from bot.doctor_report import CheckResult, Redactor, as_json, render, summary
from sandbox import SandboxServer
from sandbox.seed import DEMO_LIST_ID, RENEWALS_LIST_ID
from slackstub import SlackStub
from slackstub.server import MANIFEST_BOT_SCOPES
from tests.support import UPDATE_ROUTE, WRITE_ROUTES, SandboxControl

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_SCOPES = set(yaml.safe_load((ROOT / "manifest.yml").read_text())["oauth_config"]["scopes"]["bot"])

#: Every check's line on the demo sandbox, in order (the write check only with --write-check).
ALL_PASS_LINES = (
    "✓ settings: complete for leadbot run in Socket Mode",
    "✓ Slack bot token: accepted by workspace",
    "✓ Slack scopes: granted commands, chat:write, im:write",
    "✓ Slack app token (Socket Mode): accepted",
    "✓ babelforce login: password grant as",
    "✓ babelforce lists: 3 lists: Spring leads (50 leads), Autumn leads (10 leads), Renewals (10 leads)",
    "✓ export of Spring leads: rows readable: 50",
    "✓ export of Autumn leads: rows readable: 10",
    "✓ export of Renewals: rows readable: 10",
    "✓ export vs JSON API, Spring leads: the first 5 leads agree",
    "✓ export vs JSON API, Autumn leads: the first 5 leads agree",
    "✓ export vs JSON API, Renewals: the first 5 leads agree",
    "✓ hopper of Spring outreach: all 20 entries are leads of Spring leads (by id)",
    "✓ hopper of Renewals: all 10 entries are leads of Renewals (by id)",
    "✓ campaign → list: 2 campaigns, 2 active",
)


@dataclass
class Installation:
    """The sandbox and the Slack stand-in a test's settings point at; `doctor(...)` runs `leadbot doctor`."""

    sandbox: SandboxServer
    slack: SlackStub
    control: SandboxControl
    env: dict[str, str]
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]

    def set(self, **values: str | None) -> None:
        """Change settings: a value of None unsets the variable."""
        for key, value in values.items():
            if value is None:
                self.env.pop(key, None)
            else:
                self.env[key] = value

    def doctor(self, *args: str) -> tuple[int, str]:
        """`leadbot doctor ARGS` in this process: its exit status and stdout."""
        for key in [key for key in os.environ if key.startswith(("SLACK_", "BABELFORCE_", "LEADBOT_"))]:
            self.monkeypatch.delenv(key)
        for key, value in self.env.items():
            self.monkeypatch.setenv(key, value)
        self.capsys.readouterr()
        status = cli.main(["doctor", *args])
        return status, self.capsys.readouterr().out


@pytest.fixture
def installation_factory(
    sandbox: SandboxServer,
    control: SandboxControl,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> Iterator[Callable[..., Installation]]:
    """A good installation in front of the demo sandbox; SlackStub options (e.g. fewer scopes) as keywords."""
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    stubs: list[SlackStub] = []

    def make(**stub_options: object) -> Installation:
        slack = SlackStub(**stub_options).start()  # type: ignore[arg-type]
        stubs.append(slack)
        assert slack.app_token is not None
        env = {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_APP_TOKEN": slack.app_token,
            "SLACK_API_URL": slack.api_url,
            "BABELFORCE_BASE_URL": sandbox.base_url,
            "BABELFORCE_USERNAME": "demo",
            "BABELFORCE_PASSWORD": "demo",
            "LEADBOT_ALLOW_ALL_WRITERS": "true",
        }
        return Installation(sandbox, slack, control, env, monkeypatch, capsys)

    yield make
    for stub in stubs:
        stub.stop()


@pytest.fixture
def installation(installation_factory: Callable[..., Installation]) -> Installation:
    return installation_factory()


def _lines(out: str, mark: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(mark)]


def _line(out: str, start: str) -> str:
    found = [line for line in out.splitlines() if line.startswith(start)]
    assert found, f"no line starting {start!r} in:\n{out}"
    return found[0]


def _fix_after(out: str, start: str) -> str:
    """The "what to do" line right after the line that starts with `start`."""
    lines = out.splitlines()
    at = lines.index(_line(out, start))
    fixes = [line for line in lines[at + 1 :] if line.strip().startswith("→ what to do:")]
    assert fixes, f"no 'what to do' after {start!r}:\n{out}"
    return fixes[0]


# ---------------------------------------------------------------------- all pass


def test_a_good_installation_passes_every_check_and_writes_nothing(installation: Installation) -> None:
    installation.control.reset_stats()
    status, out = installation.doctor()
    assert status == 0, out
    checked = _lines(out, "✓")
    assert len(checked) == len(ALL_PASS_LINES), out
    for line, expected in zip(checked, ALL_PASS_LINES, strict=True):
        assert line.startswith(expected), (line, expected)
    assert not _lines(out, "✗") and not _lines(out, "–")
    assert "Spring outreach (active, UP RANK) → Spring leads" in out
    assert "Autumn leads: no campaign dials it" in out
    assert out.splitlines()[-1].startswith("All 15 checks passed")
    assert sum(installation.control.count(route) for route in WRITE_ROUTES) == 0  # read-only


def test_the_write_check_puts_the_rank_unchanged_and_finds_every_other_field_as_it_was(
    installation: Installation,
) -> None:
    before = _lead(installation.control, "lead-5")
    installation.control.reset_stats()
    status, out = installation.doctor("--list", "Spring leads", "--write-check", "spring LEADS", "lead-5")
    assert status == 0, out
    assert _line(out, "✓ partial update (lead-5 in spring LEADS)").endswith(
        "PUT of rank 5 alone left every other field of lead-5 as it was"
    )
    assert installation.control.count(UPDATE_ROUTE) == 1
    after = _lead(installation.control, "lead-5")
    assert {**after, "lastUpdated": None} == {**before, "lastUpdated": None}


def test_a_list_named_with_list_checks_that_list_only(installation: Installation) -> None:
    status, out = installation.doctor("--list", "autumn leads")
    assert status == 0, out
    assert [line for line in out.splitlines() if "export" in line] == [
        _line(out, "✓ export of Autumn leads"),
        _line(out, "✓ export vs JSON API, Autumn leads"),
    ]


def test_json_output_has_one_entry_per_check(installation: Installation) -> None:
    status, out = installation.doctor("--json")
    assert status == 0
    report = json.loads(out)
    assert report["ok"] is True
    assert [check["status"] for check in report["checks"]] == ["pass"] * len(ALL_PASS_LINES)
    assert report["checks"][0]["name"] == "settings"


def test_http_mode_does_not_need_the_app_token(installation: Installation) -> None:
    installation.set(SLACK_APP_TOKEN=None, SLACK_SIGNING_SECRET="signing-secret-for-http")
    status, out = installation.doctor()
    assert status == 0, out
    assert _line(out, "✓ settings").startswith("✓ settings: complete for leadbot run in HTTP mode")
    assert _line(out, "– Slack app token (Socket Mode)").endswith("not set: leadbot run serves HTTP")


# ---------------------------------------------------------------------- must fail


def test_incomplete_settings_are_named_and_the_checks_that_need_them_do_not_run(installation: Installation) -> None:
    installation.set(LEADBOT_ALLOW_ALL_WRITERS=None, BABELFORCE_PASSWORD=None)
    status, out = installation.doctor()
    assert status == 1
    assert _line(out, "✗ settings").startswith("✗ settings: 2 settings missing or invalid")
    assert "LEADBOT_WRITERS is not set" in out
    assert "Set both BABELFORCE_USERNAME and BABELFORCE_PASSWORD" in out
    assert "as for leadbot run" in _fix_after(out, "✗ settings")
    assert _line(out, "– babelforce login").endswith("the BABELFORCE_ settings are incomplete")
    assert out.splitlines()[-1].startswith("1 of ")


def test_a_wrong_babelforce_password_fails_the_login(installation: Installation) -> None:
    installation.set(BABELFORCE_PASSWORD="not-the-password")
    status, out = installation.doctor()
    assert status == 1
    assert "refused to log in" in _line(out, "✗ babelforce login: password grant as demo")
    assert "check BABELFORCE_USERNAME and BABELFORCE_PASSWORD" in _fix_after(out, "✗ babelforce login")
    assert _line(out, "– babelforce lists").endswith("not checked: needs a babelforce login")
    assert "not-the-password" not in out


def test_client_credentials_babelforce_refuses_point_to_the_password_grant(installation: Installation) -> None:
    installation.set(
        BABELFORCE_USERNAME=None, BABELFORCE_PASSWORD=None, BABELFORCE_CLIENT_ID="x", BABELFORCE_CLIENT_SECRET="nope"
    )
    status, out = installation.doctor()
    assert status == 1
    assert _line(out, "✗ babelforce login").startswith("✗ babelforce login: client credentials (client id x)")
    assert "use the password grant instead" in _fix_after(out, "✗ babelforce login")


def test_a_bot_token_slack_refuses(installation: Installation) -> None:
    installation.set(SLACK_BOT_TOKEN="xoxb-not-the-right-one")
    status, out = installation.doctor()
    assert status == 1
    assert _line(out, "✗ Slack bot token").endswith("Slack refused it (invalid_auth)")
    assert "Bot User OAuth Token" in _fix_after(out, "✗ Slack bot token")
    assert _line(out, "– Slack scopes").endswith("needs a bot token Slack accepts")
    assert _line(out, "✓ babelforce lists")  # the babelforce side is still checked


def test_an_app_token_slack_refuses(installation: Installation) -> None:
    installation.set(SLACK_APP_TOKEN="xapp-not-the-right-one")
    status, out = installation.doctor()
    assert status == 1
    assert _line(out, "✗ Slack app token (Socket Mode)").endswith("Slack refused it (invalid_auth)")
    assert "connections:write" in _fix_after(out, "✗ Slack app token")


def test_a_missing_scope_is_named_with_what_needs_it(installation_factory: Callable[..., Installation]) -> None:
    installation = installation_factory(scopes=("commands", "chat:write"))
    status, out = installation.doctor()
    assert status == 1
    assert _line(out, "✗ Slack scopes").endswith("missing im:write")
    assert "· im:write is needed for opening the DM with a user where leadbot is not in the channel" in out
    assert "reinstall the app" in _fix_after(out, "✗ Slack scopes")


def test_user_groups_need_usergroups_read(installation_factory: Callable[..., Installation]) -> None:
    installation = installation_factory(scopes=("commands", "chat:write", "im:write"))
    status, out = installation.doctor()
    assert status == 0, out  # no group named: not needed
    installation.set(LEADBOT_ALLOW_ALL_WRITERS=None, LEADBOT_WRITERS="U0ANNA,S0SUPERVISORS")
    status, out = installation.doctor()
    assert status == 1
    assert _line(out, "✗ Slack scopes").endswith("missing usergroups:read")
    assert "· usergroups:read is needed for the members of the user groups (S…) that LEADBOT_WRITERS" in out


def test_a_hopper_entry_that_is_no_longer_a_lead(installation: Installation) -> None:
    lead = _lead(installation.control, "lead-50")  # rank 50: in the hopper
    installation.control.api("DELETE", f"/api/v2/outbound/lists/{DEMO_LIST_ID}/leads/{lead['id']}").raise_for_status()
    status, out = installation.doctor()
    assert status == 1
    assert _line(out, "✗ hopper of Spring outreach").endswith("1 of 20 entries are not leads of Spring leads")
    assert f"position 1: uid 'lead-50': no lead with the entry's id {lead['id']}" in out
    assert "clears once the batch is dialled" in _fix_after(out, "✗ hopper of Spring outreach")
    assert _line(out, "✓ hopper of Renewals")


def test_a_hopper_none_of_whose_entries_is_a_lead(installation: Installation) -> None:
    """Every loaded lead deleted reads, to doctor, as hopper ids that are not lead ids would: it says both."""
    control = installation.control
    items = control.api("GET", f"/api/v2/outbound/lists/{RENEWALS_LIST_ID}/leads", params={"max": 100}).json()["items"]
    for item in items:
        control.api("DELETE", f"/api/v2/outbound/lists/{RENEWALS_LIST_ID}/leads/{item['id']}").raise_for_status()
    status, out = installation.doctor()
    assert status == 1
    assert _line(out, "✗ hopper of Renewals").endswith("10 of 10 entries are not leads of Renewals")
    fix = _fix_after(out, "✗ hopper of Renewals")
    assert "hopper entry ids are not lead ids on this tenant" in fix and "every loaded lead was deleted" in fix


def test_the_write_check_on_a_lead_that_does_not_exist_writes_nothing(installation: Installation) -> None:
    installation.control.reset_stats()
    status, out = installation.doctor("--write-check", "Spring leads", "lead-999")
    assert status == 1
    assert _line(out, "✗ partial update (lead-999 in Spring leads)").endswith("no lead 'lead-999' in Spring leads")
    assert "--write-check LIST LEAD" in _fix_after(out, "✗ partial update")
    assert installation.control.count(UPDATE_ROUTE) == 0


def test_an_unknown_list_name(installation: Installation) -> None:
    status, out = installation.doctor("--list", "Winter leads")
    assert status == 1
    assert _line(out, "✗ export: no list named 'Winter leads'")
    assert "Spring leads, Autumn leads, Renewals" in _fix_after(out, "✗ export")


def test_babelforce_unreachable(installation: Installation) -> None:
    installation.set(BABELFORCE_BASE_URL="http://127.0.0.1:9", BABELFORCE_MAX_RETRIES="0")
    status, out = installation.doctor()
    assert status == 1
    assert "BABELFORCE_BASE_URL" in _fix_after(out, "✗ babelforce login")


# ---------------------------------------------------------------------- secrets


def test_no_secret_reaches_stdout_or_stderr(sandbox: SandboxServer, tmp_path: Path) -> None:
    """As a real process: known secrets in every secret setting, both on paths that pass and paths that fail."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "BABELFORCE_", "LEADBOT_"))}
    secrets = {
        "SLACK_BOT_TOKEN": "xoxb-secret-bot-token-0001",
        "SLACK_APP_TOKEN": "xapp-secret-app-token-0002",
        "SLACK_SIGNING_SECRET": "secret-signing-0003",
        "BABELFORCE_PASSWORD": "secret-babelforce-password-0004",
    }
    with SlackStub(bot_token=secrets["SLACK_BOT_TOKEN"], app_token=secrets["SLACK_APP_TOKEN"]) as slack:
        env.update(
            secrets,
            SLACK_API_URL=slack.api_url,
            BABELFORCE_BASE_URL=sandbox.base_url,
            BABELFORCE_USERNAME="demo",  # the password is wrong: babelforce refuses it
            LEADBOT_ALLOW_ALL_WRITERS="true",
            LEADBOT_LOG_LEVEL="DEBUG",
        )
        refused_login = _doctor_process(env, tmp_path)
        env.update(
            SLACK_BOT_TOKEN="xoxb-secret-wrong-bot-token-0005",
            BABELFORCE_ACCESS_TOKEN="secret-static-token-0006",  # wins over the password; the sandbox refuses it
        )
        refused_tokens = _doctor_process(env, tmp_path)
    assert refused_login.returncode == 1 and refused_tokens.returncode == 1
    assert "✓ Slack bot token" in refused_login.stdout and "✗ babelforce login" in refused_login.stdout
    assert "✗ Slack bot token" in refused_tokens.stdout and "✗ babelforce lists" in refused_tokens.stdout
    everything = refused_login.stdout + refused_login.stderr + refused_tokens.stdout + refused_tokens.stderr
    for secret in [*secrets.values(), "xoxb-secret-wrong-bot-token-0005", "secret-static-token-0006"]:
        assert secret not in everything
    assert "secret-" not in everything
    assert "Traceback" not in everything


def _doctor_process(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "doctor"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


# ---------------------------------------------------------------------- the parts, one function each


def test_the_scopes_doctor_knows_are_the_manifests_and_the_stand_ins() -> None:
    assert set(ALWAYS_NEEDED_SCOPES) | {GROUP_SCOPE} == MANIFEST_SCOPES
    assert set(MANIFEST_BOT_SCOPES) == MANIFEST_SCOPES


def test_the_write_check_is_the_last_check_and_runs_only_when_asked() -> None:
    assert CHECKS[-1] is write_check


def test_changed_fields_names_every_difference_but_the_update_stamp() -> None:
    before = {"id": "a", "rank": 5, "number": "+4915100000001", "lastUpdated": "1", "data": {"a": 1, "b": 2, "c": 3}}
    after = {"id": "a", "rank": 5, "number": "+4915100000099", "lastUpdated": "2", "data": {"a": 1, "b": 9, "d": 4}}
    assert changed_fields(before, after) == [
        "data.b: changed",
        "data.c: removed",
        "data.d: added",
        "number: •••••••••••01 → •••••••••••99",
    ]
    assert changed_fields(before, before) == []
    assert changed_fields({"status": "new"}, {}) == ["status: new → None"]


def test_disagreements_compare_numbers_by_their_digits() -> None:
    exported = IndexedLead("a" * 32, "lead-1", "4915100000001", 1, "new")
    assert disagreements(exported, Lead(id="a" * 32, uid="lead-1", number="+4915100000001", rank=1, status="new")) == []
    differing = Lead(id="a" * 32, uid="lead-2", number="+4915100000002", rank=3, status="sale")
    assert disagreements(exported, differing) == [
        "the export says uid 'lead-1', the JSON API 'lead-2'",
        "the export says number •••••••••••01, the JSON API •••••••••••02",
        "the export says rank 1, the JSON API 3",
        "the export says status new, the JSON API sale",
    ]
    assert len(disagreements(exported, differing, compared=())) == 2


def test_rendering_and_summary() -> None:
    results = [
        CheckResult.passed("a", "fine", ["a fact"]),
        CheckResult.failed("b", "broken", "mend it"),
        CheckResult.skipped("c", "not checked: needs b"),
    ]
    assert render(results[0]) == ["✓ a: fine", "    · a fact"]
    assert render(results[1]) == ["✗ b: broken", "    → what to do: mend it"]
    assert render(results[2]) == ["– c: not checked: needs b"]
    assert (
        summary(results) == "1 of 2 checks failed (1 not run): fix the lines marked ✗, then run leadbot doctor again."
    )
    assert summary(results[:1]).startswith("All 1 checks passed")
    assert as_json(results)["ok"] is False


def test_the_redactor_replaces_every_secret_longest_first() -> None:
    redact = Redactor(["xoxb-123456", "123456", "ab", None, ""])
    assert redact("token xoxb-123456 and 123456, ab") == "token [secret] and [secret], ab"


@dataclass(frozen=True)
class _Shape:
    """The ExportShape babelforce.lookup is to offer (its fields as agreed), for the export check's other branch."""

    delimiter: str
    encoding: str
    bom: bool
    excel_sep_line: bool
    headers: tuple[str, ...]
    columns: dict[str, str]
    rows: int
    problem: str | None


def test_the_export_check_shows_the_shape_when_lookup_can_inspect_it(
    installation: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def inspect_export(client: object, list_id: str) -> _Shape:
        if list_id == DEMO_LIST_ID:
            return _Shape(";", "iso-8859-1", True, True, ("leadId", "uid", "phone"), {"id": "leadId"}, 50, None)
        return _Shape(",", "utf-8", False, False, ("x",), {}, 0, "no id column")

    monkeypatch.setattr(lookup, "inspect_export", inspect_export, raising=False)
    status, out = installation.doctor()
    assert status == 1
    assert _line(out, "✓ export of Spring leads").endswith(
        "50 rows, semicolon-separated, iso-8859-1, BOM, Excel sep= line; headers: leadId, uid, phone; "
        "read as id='leadId'"
    )
    assert _line(out, "✗ export of Autumn leads").startswith("✗ export of Autumn leads: no id column (0 rows")


def _lead(control: SandboxControl, uid: str) -> dict[str, object]:
    items = control.api("GET", f"/api/v2/outbound/lists/{DEMO_LIST_ID}/leads", params={"max": 100}).json()["items"]
    return next(item for item in items if item["uid"] == uid)
