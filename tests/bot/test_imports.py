"""`leadbot run` never imports the test doubles (sandbox/, slackstub/) nor the throwaway PostgreSQL server
(localserve/postgres.py); `leadbot console` and `leadbot sandbox` do import the doubles. Building the parser imports
no subcommand's module: each subcommand pays only for its own imports.

Each check runs in a fresh interpreter, since this test process has long imported both. The parser's, `leadbot
run`'s and `leadbot console`'s checks share one, in that order, each import a superset of the one before: what a
step loaded is read before the next step starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import app, audit_export
from bot.cli import AUDIT_FORMATS, EVENTS_PATH, HEALTH_PATH, SANDBOX_SEEDS, build_parser
from sandbox.seed import SEEDS

# Runs after the snippet under test: the test-double modules it loaded, as a JSON list.
REPORT = """
import json as _json, sys as _sys
print(_json.dumps(sorted(
    name for name in _sys.modules if name.split(".")[0] in {"sandbox", "slackstub"} or name == "localserve.postgres"
)))
"""

PARSER_AND_HELP = """
import contextlib, io, sys
import bot.cli
parser = bot.cli.build_parser()
with contextlib.redirect_stdout(io.StringIO()) as shown, contextlib.suppress(SystemExit):
    parser.parse_args(["--help"])
assert "doctor" in shown.getvalue() and "sandbox" in shown.getvalue()
args = parser.parse_args(["run", "--http"])
heavy = {"bot.run", "bot.app", "bot.doctor", "bot.audit_export", "bot.console", "sandbox.cli", "slack_bolt", "aiohttp"}
assert heavy.isdisjoint(sys.modules), sorted(heavy.intersection(sys.modules))
"""

RUN = """
import bot.app, bot.cli, bot.run
args = bot.cli.build_parser().parse_args(["run", "--http", "--port", "0"])
assert args.run.resolve() is bot.run.run
"""

# the console's own callback, stopped early by a script it cannot read (nothing is served)
CONSOLE = """
import bot.cli
args = bot.cli.build_parser().parse_args(["console", "--script", "no-such-script.txt"])
assert args.run(args) == 2
"""


def _test_doubles_loaded_by(*snippets: str, cwd: Path) -> list[list[str]]:
    """Run the snippets one after the other in one fresh interpreter; the test doubles loaded after each."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "BABELFORCE_", "LEADBOT_"))}
    program = "".join(snippet + REPORT for snippet in snippets)
    result = subprocess.run(
        [sys.executable, "-c", program], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.strip().splitlines()[-len(snippets) :]]


@pytest.fixture(scope="module")
def parser_then_run_then_console(tmp_path_factory: pytest.TempPathFactory) -> list[list[str]]:
    return _test_doubles_loaded_by(PARSER_AND_HELP, RUN, CONSOLE, cwd=tmp_path_factory.mktemp("imports"))


def test_the_parser_and_help_import_no_subcommand(parser_then_run_then_console: list[list[str]]) -> None:
    assert parser_then_run_then_console[0] == []


def test_leadbot_run_imports_no_test_double(parser_then_run_then_console: list[list[str]]) -> None:
    assert parser_then_run_then_console[1] == []


def test_leadbot_console_does_import_the_slack_stand_in_and_the_sandbox(
    parser_then_run_then_console: list[list[str]],
) -> None:
    loaded = parser_then_run_then_console[2]
    assert "slackstub" in loaded
    assert "sandbox" in loaded


def test_leadbot_sandbox_does_import_the_sandbox(tmp_path: Path) -> None:
    # the sandbox's own callback, stopped by its check of --leads before anything is served
    snippet = """
import bot.cli
args = bot.cli.build_parser().parse_args(["sandbox", "--seed", "empty", "--leads", "5"])
try:
    args.run(args)
except SystemExit as exit:
    assert exit.code == 2
else:
    raise AssertionError("--leads with --seed empty was accepted")
"""
    (loaded,) = _test_doubles_loaded_by(snippet, cwd=tmp_path)
    assert "sandbox.cli" in loaded


def test_the_parser_spells_the_paths_and_formats_of_the_modules_it_does_not_import() -> None:
    assert (EVENTS_PATH, HEALTH_PATH) == (app.EVENTS_PATH, app.HEALTH_PATH)
    assert AUDIT_FORMATS == audit_export.FORMATS


def test_the_sandbox_parser_offers_the_sandboxs_seeds() -> None:
    assert SANDBOX_SEEDS == SEEDS
    args = build_parser().parse_args(["sandbox"])
    assert args.seed == "demo"
