"""The bench's parts 1c (store: a write on SQLite and on PostgreSQL) and 5 (find) at tiny sizes: they run and
report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_store_and_find_run_and_report(bench: Callable[..., dict[str, Any]]) -> None:
    report = bench("store", "find")
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
