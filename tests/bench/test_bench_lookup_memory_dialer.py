"""The bench's parts 3 (lookup), 4 (memory) and 6 (dialer), on a 300-lead list: they run and report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_lookup_memory_and_dialer_run_and_report(bench: Callable[..., dict[str, Any]]) -> None:
    report = bench("lookup", "memory", "dialer")
    commands = report["lookup"]["sizes"]["300"]["commands"]
    assert commands["show by uid"]["cold_requests"] == 4  # CSV export + GET lead + campaign + hopper
    assert commands["show by uid"]["warm_requests_median"] == 3
    assert commands["rank by number"]["warm_requests_median"] == 4  # + PUT; the hopper's last lead read just now
    assert all(row["errors"] == 0 for row in commands.values())
    assert report["lookup"]["sizes"]["300"]["naive"]["found"]
    assert report["memory"]["peak_rss_mb"] > 0
    dialer = report["dialer"]
    for kind in ("hopper", "why"):
        assert dialer[kind]["errors"] == 0
        assert dialer[kind]["warm_requests_max"] <= 4  # the campaigns, the campaign and its hopper (why: the lead)
    alerts = dialer["alerts"]
    assert alerts["per_campaign"] == 2 and alerts["requests_per_pass"] == 1 + 2 * alerts["active_campaigns"]
