"""The bench's parts 1c (store: a write on SQLite and on PostgreSQL) and 5 (find) at tiny sizes: they run and
report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support import POSTGRES_URL_ENV


def test_store_and_find_run_and_report(bench: Callable[..., dict[str, Any]], request: pytest.FixtureRequest) -> None:
    try:  # this worker's PostgreSQL, found or started once for the store tests, rather than one more of its own
        env = {POSTGRES_URL_ENV: request.getfixturevalue("postgres").admin_url}
    except pytest.skip.Exception:
        env = {}  # none: the bench says why it skips the store part
    report = bench("store", "find", env=env)
    store = report["store"]  # a rank write on SQLite and on PostgreSQL (skipped, saying why, without PostgreSQL)
    if "skipped" not in store:
        assert {kind: (got["writes"], got["failed"]) for kind, got in store["by_store"].items()} == {
            "sqlite": (3, 0),
            "postgresql": (3, 0),
        }
        assert store["postgres_transactions_per_write"] > 0
    for case in ("many", "big"):
        find = report["find"][case]
        assert find["failed"] == 0 and find["cold_lead_gets"] == 0
        assert find["cold_exports"] >= 1 and find["warm_exports_max"] == 0  # warm: the exports are kept
        assert find["naive"]["requests"] > 0
