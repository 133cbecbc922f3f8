"""The bot's settings: every variable documented, blanks ignored, bad values named without their value."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from babelforce.config import BabelforceSettings
from bot.settings import BotSettings, StartupError, load_babelforce_settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIXES = ("SLACK_", "LEADBOT_", "BABELFORCE_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable from the developer's shell or .env file may decide these tests."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _all_variables() -> set[str]:
    bot = {name.upper() for name in BotSettings.model_fields}
    babelforce = {"BABELFORCE_" + name.upper() for name in BabelforceSettings.model_fields}
    return bot | babelforce


def test_env_example_lists_every_variable_with_a_comment() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z_]+)=", text, flags=re.MULTILINE))
    assert listed == _all_variables()
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z_]+=", line):
            previous = lines[index - 1]
            assert previous.startswith("#") or re.match(r"^[A-Z_]+=", previous), f"{line} has no comment"


def test_readme_configuration_table_names_every_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") :]
    for name in _all_variables():
        assert f"`{name}`" in table, name


def test_blank_values_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LEADBOT_ALLOW_ALL_WRITERS", "LEADBOT_PORT", "LEADBOT_DEFAULT_REGION", "SLACK_API_URL"):
        monkeypatch.setenv(name, "")
    settings = load_settings()
    assert settings.leadbot_allow_all_writers is False
    assert settings.leadbot_port == 3000
    assert settings.leadbot_default_region is None
    assert settings.slack_api_url is None


def test_env_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LEADBOT_ALLOW_ALL_WRITERS=true\nLEADBOT_DEFAULT_REGION=de\n")
    settings = load_settings()
    assert settings.leadbot_allow_all_writers is True
    assert settings.leadbot_default_region == "DE"


def test_invalid_values_name_the_variable_not_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADBOT_DEFAULT_REGION", "Atlantis-secret")
    monkeypatch.setenv("LEADBOT_PORT", "99999999")
    monkeypatch.setenv("SLACK_API_URL", "ftp://secret-host")
    with pytest.raises(StartupError) as failure:
        load_settings()
    message = str(failure.value)
    assert "LEADBOT_DEFAULT_REGION is invalid" in message
    assert "LEADBOT_PORT is invalid" in message
    assert "SLACK_API_URL is invalid" in message
    assert "secret" not in message.casefold()


def test_slack_api_url_gets_the_trailing_slash_slack_sdk_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    assert load_settings().slack_api_url == "http://127.0.0.1:9/api/"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("http", ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "LEADBOT_WRITERS"]),
        ("socket", ["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "LEADBOT_WRITERS"]),
        ("console", []),
    ],
)
def test_each_mode_names_what_it_lacks(mode: str, expected: list[str]) -> None:
    settings = load_settings()
    if not expected:
        settings.check(mode)  # the console needs nothing
        return
    with pytest.raises(StartupError) as failure:
        settings.check(mode)
    assert [problem.split()[0] for problem in failure.value.problems] == expected


# ---------------------------------------------------------------------- permissions and audit

SLACK_MODE_ENV = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "SLACK_APP_TOKEN": "xapp-1"}


@pytest.mark.parametrize(
    "raw",
    ["U0ALICE,S0SUPERVISORS,W0CAROL", "U0ALICE S0SUPERVISORS W0CAROL", " U0ALICE, S0SUPERVISORS\tW0CAROL ,"],
    ids=["commas", "spaces", "mixed"],
)
def test_id_lists_take_commas_and_or_whitespace(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("LEADBOT_WRITERS", raw)
    monkeypatch.setenv("LEADBOT_READERS", raw)
    monkeypatch.setenv("LEADBOT_CHANNELS", "C0CAMPAIGN, G0PRIVATE D0DIRECT")
    monkeypatch.setenv("LEADBOT_TEAM_ID", "T0LEADBOT E0ACME")
    settings = load_settings()
    assert settings.leadbot_writers == frozenset({"U0ALICE", "S0SUPERVISORS", "W0CAROL"})
    assert settings.leadbot_readers == settings.leadbot_writers
    assert settings.leadbot_channels == frozenset({"C0CAMPAIGN", "G0PRIVATE", "D0DIRECT"})
    assert settings.leadbot_team_id == frozenset({"T0LEADBOT", "E0ACME"})


def test_id_lists_default_to_empty_and_read_the_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.leadbot_writers == settings.leadbot_readers == frozenset()
    assert settings.leadbot_channels == settings.leadbot_team_id == frozenset()
    assert settings.leadbot_db is None and settings.leadbot_audit_channel is None
    (tmp_path / ".env").write_text("LEADBOT_WRITERS=U0ALICE,S0SUPERVISORS\nLEADBOT_READERS= , \n")
    settings = load_settings()
    assert settings.leadbot_writers == frozenset({"U0ALICE", "S0SUPERVISORS"})
    assert settings.leadbot_readers == frozenset()  # only separators: nothing listed


def test_bad_ids_are_named_with_what_is_expected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADBOT_WRITERS", "U0ALICE, alice")
    monkeypatch.setenv("LEADBOT_READERS", "@bob C0CAMPAIGN")
    monkeypatch.setenv("LEADBOT_CHANNELS", "#spring-campaign")
    monkeypatch.setenv("LEADBOT_TEAM_ID", "acme.slack.com")
    monkeypatch.setenv("LEADBOT_AUDIT_CHANNEL", "U0ALICE")
    with pytest.raises(StartupError) as failure:
        load_settings()
    problems = {problem.split()[0]: problem for problem in failure.value.problems}
    assert set(problems) == {
        "LEADBOT_WRITERS",
        "LEADBOT_READERS",
        "LEADBOT_CHANNELS",
        "LEADBOT_TEAM_ID",
        "LEADBOT_AUDIT_CHANNEL",
    }
    assert "'alice'" in problems["LEADBOT_WRITERS"] and "U0ALICE" not in problems["LEADBOT_WRITERS"]
    assert "user id (U…/W…) or user group id (S…)" in problems["LEADBOT_WRITERS"]
    assert "@handle does not work" in problems["LEADBOT_WRITERS"]
    assert "'@bob'" in problems["LEADBOT_READERS"] and "'C0CAMPAIGN'" in problems["LEADBOT_READERS"]
    assert "'#spring-campaign'" in problems["LEADBOT_CHANNELS"] and "channel id" in problems["LEADBOT_CHANNELS"]
    assert "'acme.slack.com'" in problems["LEADBOT_TEAM_ID"] and "(T…)" in problems["LEADBOT_TEAM_ID"]
    assert "'U0ALICE'" in problems["LEADBOT_AUDIT_CHANNEL"] and "channel id" in problems["LEADBOT_AUDIT_CHANNEL"]


def test_a_token_pasted_into_an_id_list_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADBOT_WRITERS", "xoxb-1234-secret-value")
    with pytest.raises(StartupError) as failure:
        load_settings()
    assert "LEADBOT_WRITERS is invalid" in str(failure.value)
    assert "xoxb" not in str(failure.value) and "secret-value" not in str(failure.value)


def test_audit_database_and_channel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LEADBOT_DB", str(tmp_path / "audit.db"))
    monkeypatch.setenv("LEADBOT_AUDIT_CHANNEL", "C0AUDIT")
    settings = load_settings()
    assert settings.leadbot_db == str(tmp_path / "audit.db")
    assert settings.leadbot_audit_channel == "C0AUDIT"


@pytest.mark.parametrize(
    "value", ["postgresql://leadbot:s3cret@db.internal:5432/leadbot", "postgres://db/leadbot", "sqlite:///data/x.db"]
)
def test_leadbot_db_takes_a_postgresql_or_sqlite_url(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("LEADBOT_DB", value)
    assert load_settings().leadbot_db == value  # kept as written: "//" is not collapsed as a path would


def test_leadbot_db_with_another_scheme_is_refused_in_one_sentence_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEADBOT_DB", "mysql://leadbot:s3cret@db.internal/leadbot")
    with pytest.raises(StartupError) as failure:
        load_settings()
    (problem,) = failure.value.problems
    assert problem == (
        "LEADBOT_DB is invalid: must be a file path (SQLite) or a postgresql:// URL; "
        "mysql:// is not a database leadbot can use."
    )


@pytest.mark.parametrize("mode", ["http", "socket"])
def test_slack_modes_refuse_to_start_without_a_writer_policy(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    for name, value in SLACK_MODE_ENV.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(StartupError) as failure:
        load_settings().check(mode)
    (problem,) = failure.value.problems
    assert problem.startswith("LEADBOT_WRITERS is not set:")
    assert "LEADBOT_ALLOW_ALL_WRITERS=true" in problem

    monkeypatch.setenv("LEADBOT_ALLOW_ALL_WRITERS", "true")
    load_settings().check(mode)
    monkeypatch.delenv("LEADBOT_ALLOW_ALL_WRITERS")
    monkeypatch.setenv("LEADBOT_WRITERS", "S0SUPERVISORS")
    load_settings().check(mode)


def test_the_console_needs_no_writer_policy() -> None:
    settings = load_settings()
    assert settings.leadbot_writers == frozenset() and settings.leadbot_allow_all_writers is False
    settings.check("console")


def test_babelforce_settings_are_optional_only_for_the_console() -> None:
    assert load_babelforce_settings(required=False) is None
    with pytest.raises(StartupError) as failure:
        load_babelforce_settings(required=True)
    assert any("BABELFORCE_BASE_URL" in problem for problem in failure.value.problems)


def test_babelforce_settings_half_set_are_reported_even_for_the_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BABELFORCE_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("BABELFORCE_USERNAME", "someone")
    with pytest.raises(StartupError) as failure:
        load_babelforce_settings(required=False)
    assert any("BABELFORCE_PASSWORD" in problem for problem in failure.value.problems)


def test_alert_settings_default_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.leadbot_alert_channel is None  # no channel, no alerts
    assert settings.leadbot_alert_interval == 60
    assert settings.leadbot_alert_hopper_min == 5
    monkeypatch.setenv("LEADBOT_ALERT_CHANNEL", " C0ALERTS ")
    monkeypatch.setenv("LEADBOT_ALERT_INTERVAL", "15")
    monkeypatch.setenv("LEADBOT_ALERT_HOPPER_MIN", "1")
    settings = load_settings()
    assert (settings.leadbot_alert_channel, settings.leadbot_alert_interval, settings.leadbot_alert_hopper_min) == (
        "C0ALERTS",
        15,
        1,
    )
    monkeypatch.setenv("LEADBOT_ALERT_CHANNEL", "#campaign-alerts")
    monkeypatch.setenv("LEADBOT_ALERT_INTERVAL", "1")
    monkeypatch.setenv("LEADBOT_ALERT_HOPPER_MIN", "0")
    with pytest.raises(StartupError) as failure:
        load_settings()
    message = str(failure.value)
    for name in ("LEADBOT_ALERT_CHANNEL", "LEADBOT_ALERT_INTERVAL", "LEADBOT_ALERT_HOPPER_MIN"):
        assert f"{name} is invalid" in message


def test_log_format_and_metrics_settings_default_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.leadbot_log_format == "text"  # today's lines
    assert settings.leadbot_metrics_port is None  # Socket Mode serves no metrics unless asked
    assert settings.leadbot_metrics_host == "127.0.0.1"  # and then only to this machine, unless told otherwise
    monkeypatch.setenv("LEADBOT_LOG_FORMAT", " JSON ")
    monkeypatch.setenv("LEADBOT_METRICS_PORT", "9464")
    monkeypatch.setenv("LEADBOT_METRICS_HOST", "0.0.0.0")
    settings = load_settings()
    assert (settings.leadbot_log_format, settings.leadbot_metrics_port, settings.leadbot_metrics_host) == (
        "json",
        9464,
        "0.0.0.0",
    )
    monkeypatch.setenv("LEADBOT_METRICS_PORT", " ")
    assert load_settings().leadbot_metrics_port is None
    monkeypatch.setenv("LEADBOT_LOG_FORMAT", "xml")
    monkeypatch.setenv("LEADBOT_METRICS_PORT", "70000")
    with pytest.raises(StartupError) as failure:
        load_settings()
    message = str(failure.value)
    for name in ("LEADBOT_LOG_FORMAT", "LEADBOT_METRICS_PORT"):
        assert f"{name} is invalid" in message


def test_audit_retention_days_default_zero_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().leadbot_audit_retention_days == 365  # babelforce's own default for its data
    monkeypatch.setenv("LEADBOT_AUDIT_RETENTION_DAYS", " 0 ")  # 0 keeps every record forever
    assert load_settings().leadbot_audit_retention_days == 0
    monkeypatch.setenv("LEADBOT_AUDIT_RETENTION_DAYS", "")
    assert load_settings().leadbot_audit_retention_days == 365
    for bad in ("-1", "1.5", "a year", "36501", "1e3"):
        monkeypatch.setenv("LEADBOT_AUDIT_RETENTION_DAYS", bad)
        with pytest.raises(StartupError) as failure:
            load_settings()
        assert failure.value.problems == [
            "LEADBOT_AUDIT_RETENTION_DAYS is invalid: must be a whole number of days from 0 to 36500 "
            "(0 keeps every audit record forever)."
        ]
