"""The audit store's schema, as numbered SQL files per database (sqlite/, postgresql/), shipped as package data.

Why files: a schema change is one reviewed file, `NNNN_what_it_does.sql`, applied once at start inside the store's
start-up transaction and recorded in the database's `schema_migrations` table (version, name, applied_at). Add a
file, never edit one: databases in the field are at any version. The store that applies them (bot.audit) takes a
lock first (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so processes starting at once apply each file
once.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

Dialect = Literal["sqlite", "postgresql"]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str  # the file's name without its number and suffix, e.g. "lead_locks"
    sql: str

    def statements(self) -> list[str]:
        """The file's statements one by one (sqlite3's execute takes one at a time; executescript would commit)."""
        found: list[str] = []
        pending = ""
        for line in self.sql.splitlines(keepends=True):
            pending += line
            if sqlite3.complete_statement(pending):
                found.append(pending.strip())
                pending = ""
        leftover = "\n".join(
            line for line in pending.splitlines() if line.strip() and not line.lstrip().startswith("--")
        )
        if leftover:
            raise ValueError(f"migration {self.version:04d}_{self.name}.sql ends in an unfinished statement")
        return found


@cache
def migrations(dialect: Dialect) -> tuple[Migration, ...]:
    """Every migration of a dialect, in version order; numbers run 1, 2, 3 ... without gaps or repeats."""
    folder = resources.files(__package__).joinpath(dialect)
    found = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number, _, name = entry.name.removesuffix(".sql").partition("_")
        found.append(Migration(int(number), name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    if [migration.version for migration in found] != list(range(1, len(found) + 1)):
        raise ValueError(f"bot/migrations/{dialect}: versions must run 1, 2, 3 ... without gaps")
    return tuple(found)


def latest(dialect: Dialect) -> int:
    """The schema version this leadbot brings a database to."""
    return len(migrations(dialect))
