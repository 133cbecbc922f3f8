"""The bench's parts 1 (ack), 1b (workers) and 2 (overhead) at tiny sizes: they run and report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_ack_workers_and_overhead_run_and_report(bench: Callable[..., dict[str, Any]]) -> None:
    report = bench("ack", "workers", "overhead")
    for mode in ("closed", "open"):
        assert report["ack"][mode]["replies_with_lead_card"] == 10
    assert report["workers"]["by_workers"]["2"]["replies_with_lead_card"] == 10  # `leadbot run --http --workers 2`
    assert report["overhead"]["commands"] == 3
