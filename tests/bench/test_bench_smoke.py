"""The benchmark harness at tiny sizes: every part runs and reports; no timing is asserted (see bench/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_part_runs_and_writes_markdown_and_json(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    args = ["--quick", "--sizes", "300", "--ack-requests", "10", "--ack-concurrency", "5", "--ack-latency-ms", "50"]
    args += ["--overhead-commands", "3", "--warm-commands", "2", "--store-writes", "3", "--out", str(out)]
    args += ["--find-lists", "2x200", "--find-big", "1000"]
    result = subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
    for mode in ("closed", "open"):
        assert report["ack"][mode]["replies_with_lead_card"] == 10
    for workers in ("1", "2"):  # the burst with `leadbot run --http --workers N`
        assert report["workers"]["by_workers"][workers]["replies_with_lead_card"] == 10
    store = report["store"]  # a rank write on SQLite and on PostgreSQL (skipped, saying why, without PostgreSQL)
    if "skipped" not in store:
        assert {kind: (got["writes"], got["failed"]) for kind, got in store["by_store"].items()} == {
            "sqlite": (3, 0),
            "postgresql": (3, 0),
        }
        assert store["postgres_transactions_per_write"] > 0
    assert report["overhead"]["commands"] == 3
    commands = report["lookup"]["sizes"]["300"]["commands"]
    assert commands["show by uid"]["cold_requests"] == 4  # CSV export + GET lead + campaign + hopper
    assert commands["show by uid"]["warm_requests_median"] == 3
    assert commands["rank by number"]["warm_requests_median"] == 4  # + PUT; the hopper's last lead read just now
    assert all(row["errors"] == 0 for row in commands.values())
    assert report["lookup"]["sizes"]["300"]["naive"]["found"]
    assert report["memory"]["peak_rss_mb"] > 0
    for case in ("many", "big"):
        find = report["find"][case]
        assert find["failed"] == 0 and find["cold_lead_gets"] == 0
        assert find["cold_exports"] >= 1 and find["warm_exports_max"] == 0  # warm: the exports are kept
        assert find["naive"]["requests"] > 0
    dialer = report["dialer"]
    for kind in ("hopper", "why"):
        assert dialer[kind]["errors"] == 0
        assert dialer[kind]["warm_requests_max"] <= 4  # the campaigns, the campaign and its hopper (why: the lead)
    alerts = dialer["alerts"]
    assert alerts["per_campaign"] == 2 and alerts["requests_per_pass"] == 1 + 2 * alerts["active_campaigns"]
    assert report["bot_log"]["errors"] == 0
    assert "| measure | result | target | met |" in out.with_suffix(".md").read_text()
