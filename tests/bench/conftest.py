"""The benchmark harness at tiny sizes (`python -m bench --quick ...` as a real process, as `python3 dev.py bench`
runs it): every part runs and reports; no timing is asserted (see bench/). The parts are split over a few test
files, each running some of them (`--only`), so that the test workers run them side by side.

Each bot the bench starts is a process and its imports, so the smoke narrows the parts that start one per case:
the workers part bursts `--workers 2` only (`--workers 1` is part 1's own burst on a fresh bot), the lookup part
measures two of its four commands (each command's code path is the same loop)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: The smallest sizes that still exercise every part's code: a 300-lead list, a few commands each.
TINY = ["--quick", "--sizes", "300", "--ack-requests", "10", "--ack-concurrency", "5", "--ack-latency-ms", "50"]
TINY += ["--overhead-commands", "3", "--warm-commands", "2", "--store-writes", "3"]
TINY += [
    "--find-lists",
    "2x200",
    "--find-big",
    "1000",
    "--workers-counts",
    "2",
    "--lookup-commands",
    "show-uid,rank-number",
]


@pytest.fixture
def bench(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """Run `python -m bench` on `parts` at the tiny sizes (`env`: more environment); its JSON report, once it wrote
    its markdown too and its bot logged no error."""

    def run(*parts: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        out = tmp_path / "smoke"
        result = subprocess.run(
            [sys.executable, "-m", "bench", *TINY, "--only", ",".join(parts), "--out", str(out)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        report: dict[str, Any] = json.loads(out.with_suffix(".json").read_text())
        assert report["bot_log"]["errors"] == 0
        assert "| measure | result | target | met |" in out.with_suffix(".md").read_text()
        return report

    return run
