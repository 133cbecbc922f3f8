"""bot.metrics on its own: the exposition in multiprocess mode (what `leadbot run --http --workers N` relies on),
and labels that stay bounded whatever reaches them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import metrics

ROOT = Path(__file__).resolve().parents[2]

#: A parent process as `leadbot run --http --workers 2` is: it prepares the folder, then starts two worker processes
#: the way uvicorn does (spawned: each imports prometheus_client afresh, and inherits the variable). Each counts one
#: rank command and one ack, then exits.
PARENT = """
import multiprocessing, sys
from bot import metrics

WORK = "from bot import metrics; metrics.command('rank', 'ok'); metrics.acked('command', 0.02)"

if __name__ == "__main__":
    metrics.prepare_multiprocess(sys.argv[1])
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=exec, args=(WORK,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
"""

#: An earlier run's worker, writing into the folder without preparing it.
EARLIER_RUN = """
from bot import metrics
metrics.command("show", "ok")
"""


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_exposition_adds_up_every_worker_process_in_multiprocess_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    _python(EARLIER_RUN, env={**os.environ, metrics.MULTIPROC_ENV: str(folder)})
    assert list(folder.glob("*.db")), "the earlier run left its file"

    _python(PARENT, str(folder))

    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(folder))  # this process is one more worker answering /metrics
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    samples = _samples(body.decode())
    assert samples[("leadbot_commands_total", (("outcome", "ok"), ("subcommand", "rank")))] == 2
    assert samples[("leadbot_ack_seconds_count", (("kind", "command"),))] == 2
    assert samples[("leadbot_ack_seconds_bucket", (("kind", "command"), ("le", "0.025")))] == 2
    assert samples[("leadbot_ack_seconds_bucket", (("kind", "command"), ("le", "0.01")))] == 0
    # prepare_multiprocess started from a clean folder: the earlier run's count is gone
    assert ("leadbot_commands_total", (("outcome", "ok"), ("subcommand", "show"))) not in samples


def test_single_process_exposition_is_this_process_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    before = _samples(metrics.exposition()[0].decode())
    metrics.command("find", "ok")
    after = _samples(metrics.exposition()[0].decode())
    key = ("leadbot_commands_total", (("outcome", "ok"), ("subcommand", "find")))
    assert after[key] - before.get(key, 0) == 1
    assert not any(name.endswith("_created") for name, _ in after)  # no _created series (as in multiprocess mode)


def test_label_values_are_the_codes_own_words_and_stay_bounded() -> None:
    vocabulary = metrics._Vocabulary(3)
    assert vocabulary("rank") == "rank"
    assert vocabulary("Show") == "show"
    assert vocabulary('lead-10 "Spring leads"') == metrics.OTHER  # text with spaces, quotes, dashes: never a label
    assert vocabulary("+4915100000010") == metrics.OTHER
    assert vocabulary("x" * 41) == metrics.OTHER
    assert vocabulary("set") == "set"
    assert vocabulary("find") == metrics.OTHER  # a fourth word: over the limit
    assert vocabulary("rank") == "rank"  # the words already seen stay
