"""`leadbot console --script`: the demo a newcomer runs against the in-process sandbox. The article's run is a real
process, as a newcomer starts it; the other scripts run the same command in this process (a process costs its
imports), from the command line's parser to the exit status.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.subcommands import EXAMPLES
from tests.support import Exited, clean_env, leadbot


def _script(script: str, tmp_path: Path) -> Path:
    path = tmp_path / "script.txt"
    path.write_text(script, encoding="utf-8")
    return path


@pytest.fixture
def console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Exited]:
    """`leadbot console --script` in this process, with only the given LEADBOT_ settings."""

    def run(script: str, **settings: str) -> Exited:
        path = _script(script, tmp_path)
        return leadbot(["console", "--script", str(path)], settings, tmp_path, monkeypatch, capsys)

    return run


@pytest.fixture(scope="module")
def article_run(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    script = "\n".join(
        [
            '/lead show "Spring leads" lead-40',
            '/lead rank "Spring leads" lead-40 45',
            '/lead rank "Spring leads" lead-10 100',
            ":dial 20",
            '/lead show "Spring leads" lead-10',
            EXAMPLES["add"],
            '/lead rank "Spring leads" lead-10 ten',
            "/lead help",
        ]
    )
    tmp_path = tmp_path_factory.mktemp("console")
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "console", "--script", str(_script(script, tmp_path))],
        env=clean_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_console_shows_the_articles_two_examples(article_run: subprocess.CompletedProcess[str]) -> None:
    assert article_run.returncode == 0, article_run.stderr
    out = article_run.stdout
    assert "In the hopper at position 11 of 20" in out
    assert "Already in the hopper (position 11 of 20)" in out
    assert "It will be first of the next batch, after the 20 leads in the hopper" in out


def test_console_shows_the_receipt_line_and_then_the_answer_as_slack_does(
    article_run: subprocess.CompletedProcess[str],
) -> None:
    """Slack keeps a slash command's ack on screen above the answer: the console prints both, the receipt first."""
    out = article_run.stdout
    receipt = out.index("Received: change the rank of lead-10 in Spring leads to 100")
    answer = out.index("Rank of lead-10: 10 → 100")
    assert receipt < answer
    assert "(replaces the previous message)" not in out[receipt:answer]
    assert "⏳" not in out


def test_console_dialling_the_batch_brings_the_moved_lead_in_first(
    article_run: subprocess.CompletedProcess[str],
) -> None:
    after_dial = article_run.stdout.split(":dial 20", 1)[1]
    assert "Hopper of Spring outreach (20): lead-10," in after_dial
    assert "In the hopper at position 1 of 20" in after_dial


def test_console_renders_cards_errors_and_help_as_text(article_run: subprocess.CompletedProcess[str]) -> None:
    out = article_run.stdout
    assert "Lead uuid_100 added" in out
    assert "number        +4916098119998" in out  # fields rendered as aligned label/value pairs
    assert "rank must be a whole number" in out
    assert "Usage: /lead rank <list> <lead> <rank|top>" in out
    assert "Example: /lead show" in out
    assert "Traceback" not in out + article_run.stderr


def test_console_walks_through_a_form_and_shows_field_errors(console: Callable[..., Exited]) -> None:
    script = "\n".join(
        [
            "/lead add",
            "Spring",  # the list picker: part of a name
            "uuid_200",
            "12",  # not a phone number
            "40000",  # rank out of range
            "note=from the form",
            "",
            "+4916098119999",  # the two fields in error are asked again
            "250",
        ]
    )
    result = console(script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Add a lead" in out
    assert "Spring leads (50 leads)" in out
    assert "✗ Number:" in out
    assert "✗ Rank: rank 40000 is out of range" in out
    assert "Lead uuid_200 added" in out
    assert "note: from the form" in out


def test_console_buttons_are_words_apply_cancel_and_undo_with_its_confirm(console: Callable[..., Exited]) -> None:
    run = console(
        "\n".join(
            [
                '/lead rank "Spring leads" lead-40 45',  # in the hopper: asks first
                ":apply",
                ":undo",
                ":undo",  # the undo's reply has no button any more
                '/lead rank "Spring leads" lead-40 46',
                ":cancel",
                '/lead add "Spring leads" console-1 +4915199990999 5',
                ":undo",
                "n",  # Slack's confirm dialog: keep it
                '/lead add "Spring leads" console-2 +4915199990998 5',
                ":undo",
                "y",
                '/lead history "Spring leads" lead-40',
            ]
        ),
    )

    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "Not applied yet: Change the rank of lead-40 from 40 to 45." in out
    assert "(buttons: :apply, :cancel)" in out
    assert "Rank of lead-40: 40 → 45" in out and "(buttons: :undo)" in out
    assert "Undone: rank of lead-40 restored" in out
    assert "Nothing to undo here: the last reply has no such button." in out
    assert "Cancelled: nothing was changed." in out
    assert "Not clicked: Keep it." in out
    assert "Undone: lead console-2 was deleted from list Spring leads." in out
    assert "undid a change: rank 45 → 40" in out and "changed rank 40 → 45 (undone)" in out


def test_console_undo_by_command_and_history_dates_read_as_their_utc_fallback(console: Callable[..., Exited]) -> None:
    run = console(
        "\n".join(
            [
                '/lead rank "Spring leads" lead-10 20',
                '/lead add "Spring leads" console-3 +4915199990997 5',
                "/lead undo",  # the add: asked first
                ":delete",
                "/lead undo 1",
                '/lead history "Spring leads" lead-10',
            ]
        ),
    )

    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "Undoing #2 deletes lead console-3 from list Spring leads in babelforce." in out
    assert "(buttons: :delete)" in out
    assert "Undone: lead console-3 was deleted from list Spring leads." in out
    assert "Undone: rank of lead-10 restored" in out
    assert re.search(r"^#4 · \d{4}-\d\d-\d\d \d\d:\d\d UTC · @U\w+ · undid a change: rank 20 → 10$", out, re.M), out
    assert re.search(r"^#1 · \d{4}-\d\d-\d\d \d\d:\d\d UTC · @U\w+ · changed rank 10 → 20 \(undone\)$", out, re.M)
    assert "<!date" not in out and "{date_short_pretty}" not in out


def test_console_home_tab_any_hopper_dial_outcomes_and_alerts(console: Callable[..., Exited]) -> None:
    run = console(
        "\n".join(
            [
                '/lead rank "Spring leads" lead-10 100',
                ":hopper renewals",
                ":dial 2 sale Renewals",
                ":dial 3 happy",  # not a dial status: read as a campaign's name, which does not exist
                ":dial 0",
                ":dial busy",
                ":home",
                "/lead campaign",
            ]
        ),
        LEADBOT_ALERT_CHANNEL="C0ALERTS",
        LEADBOT_ALERT_HOPPER_MIN="15",  # Renewals' 10 loaded leads are below it: one alert at the first look
    )

    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "Campaign alerts to C0ALERTS are printed as they are posted" in out
    assert "[alert C0ALERTS] ⚠ Renewals: hopper low, 10 loaded (alert below 15)" in out
    assert "Hopper of Renewals (10): renewal-10, renewal-9," in out
    assert "Dialled 2 of Renewals as sale: renewal-10, renewal-9." in out
    assert "Hopper of Renewals (8): renewal-8," in out
    assert "No campaign named 'happy' in the sandbox; the campaigns are: Renewals, Spring outreach." in out
    assert out.count("Usage: :dial [N] [status] [campaign]") == 2  # the unknown campaign and N = 0
    assert "Dialled 1 of Spring outreach as busy: lead-50." in out
    home = out.split("leadbot> :home", 1)[1]
    assert "Spring outreach · active · hopper 20 loaded · no alert" in home
    assert "Renewals · active · hopper 8 loaded · last alert: Renewals: hopper low" in home
    assert "changed lead-10 in Spring leads: rank 10 → 100" in home
    assert "type /lead undo #12 with the change's number" in home
    assert "Campaigns (2)" in out.split("leadbot> /lead campaign", 1)[1]
    assert "Traceback" not in out + run.stderr
