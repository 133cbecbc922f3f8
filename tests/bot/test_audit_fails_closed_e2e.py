"""End to end: with its audit store gone under it (the SQLite file deleted, the PostgreSQL database dropped), the
bot changes nothing in babelforce and says why."""

from __future__ import annotations

from pathlib import Path

import pytest

import bot.audit as audit_module
from sandbox import SandboxServer
from tests.support import PostgresServer, error_text, start_bot, writes


def test_no_change_reaches_babelforce_once_the_audit_file_is_deleted(sandbox: SandboxServer, tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    for bot in start_bot(sandbox, audit_path=db):
        assert "Rank of lead-12: 12 → 22" in str(bot.ask('rank "Spring leads" lead-12 22'))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        bot.control.reset_stats()

        reply = bot.ask('rank "Spring leads" lead-13 23')

        assert "was deleted while leadbot runs" in error_text(reply)
        assert "Nothing was changed" in error_text(reply)
        assert writes(bot) == 0 and bot.lead("lead-13").rank == 13


def test_no_change_reaches_babelforce_once_the_audit_database_is_dropped(
    sandbox: SandboxServer, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_module, "BUSY_TIMEOUT_S", 0.5)  # a connection that cannot be made is given up on soon
    url = postgres.create_database()
    try:
        for bot in start_bot(sandbox, audit_path=url):
            assert "Rank of lead-12: 12 → 22" in str(bot.ask('rank "Spring leads" lead-12 22'))
            postgres.drop_database(url)  # its connections are cut, and new ones are refused
            bot.control.reset_stats()

            reply = bot.ask('rank "Spring leads" lead-13 23')

            assert "Nothing was changed" in error_text(reply) and "LEADBOT_DB" in error_text(reply)
            assert writes(bot) == 0 and bot.lead("lead-13").rank == 13
    finally:
        postgres.drop_database(url)
