"""The bench's parts 1 (ack), 1b (workers) and 2 (overhead) at tiny sizes: they run and report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_ack_workers_and_overhead_run_and_report(bench: Callable[..., dict[str, Any]]) -> None:
    report = bench("ack", "workers", "overhead")
    for mode in ("closed", "open"):
        assert report["ack"][mode]["replies_with_lead_card"] == 10
    for workers in ("1", "2"):  # the burst with `leadbot run --http --workers N`
        assert report["workers"]["by_workers"][workers]["replies_with_lead_card"] == 10
    assert report["overhead"]["commands"] == 3
