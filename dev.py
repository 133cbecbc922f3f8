#!/usr/bin/env python3
"""One entry point for a fresh machine: make `.venv`, install leadbot into it, then run the demo or the tests.

Only the standard library is used here, so `python3 dev.py ...` works before anything is installed.
The install is skipped when pyproject.toml has not changed since the last one (a stamp in .venv).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")

USAGE = """usage: python3 dev.py COMMAND [ARGS...]

commands:
  demo [ARGS]   install, then start the local console: the bot, a Slack stand-in and the babelforce
                sandbox (demo seed); type /lead commands (ARGS go to `leadbot console`, e.g. --script FILE)
  test [ARGS]   install with test extras, then ruff check, ruff format --check, mypy and pytest on 3 workers
                (ARGS go to pytest; `-n 0` runs the tests in one process)
  bench [ARGS]  install, then run the benchmarks on loopback (about a minute) and write bench/results/latest.md and
                .json; `bench --quick` is a 15-second check, `bench --help` lists the options
  lint          ruff check, ruff format --check and mypy only
  fmt           ruff format and ruff check --fix (changes files)
"""


#: Three pytest workers (pytest-xdist), each taking whole test files: about 40% of a worker's time is waiting
#: (deadlines, stalls, child processes), so three files at a time keep 2 cores busy (2 workers: 155 s, 3: 119 s,
#: 2026-11-27). Whole files, because
#: module-scoped bots and the tallies some modules print expect to see all of their module's tests. Files in their
#: own order (--no-loadscope-reorder): xdist would otherwise start with the files holding the most tests and leave
#: the few-test, slow ones (the bench smoke, real `leadbot run` processes) for the end, where one worker runs them
#: while the other has nothing left. A later `-n 0` in ARGS runs everything in this process (e.g. with a debugger).
PYTEST_WORKERS = ("-n", "3", "--dist", "loadfile", "--no-loadscope-reorder")


def _test_env() -> dict[str, str]:
    """The tests' environment: Python may write its bytecode cache (__pycache__, ignored by git) even where
    PYTHONDONTWRITEBYTECODE is set, so the many interpreters the suite starts (workers, `leadbot` processes) do not
    each compile every module again (5 s of CPU per worker)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _run(*cmd: str | Path, env: dict[str, str] | None = None) -> int:
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)


def _ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py itself may be started by an older python3
        sys.exit(f"leadbot needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        print(f"Creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / ".leadbot-install"
    if stamp.exists() and stamp.read_text().strip() == digest:
        return
    print(f"Installing leadbot{extras} into .venv (first run takes a minute) ...", flush=True)
    code = _run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", f".{extras}")
    if code != 0:
        sys.exit(f"pip install failed (exit {code}); see the lines above.")
    stamp.write_text(digest)


def _lint() -> int:
    return (
        _run(PYTHON, "-m", "ruff", "check", ".")
        or _run(PYTHON, "-m", "ruff", "format", "--check", ".")
        or _run(PYTHON, "-m", "mypy")
    )


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "demo":
        _ensure_venv("")
        return _run(BIN / "leadbot", "console", *rest)
    if command == "test":
        _ensure_venv("[test]")
        return _lint() or _run(PYTHON, "-m", "pytest", *PYTEST_WORKERS, *rest, env=_test_env())
    if command == "bench":
        _ensure_venv("")
        return _run(PYTHON, "-m", "bench", *rest)
    if command == "lint":
        _ensure_venv("[test]")
        return _lint()
    if command == "fmt":
        _ensure_venv("[test]")
        return _run(PYTHON, "-m", "ruff", "format", ".") or _run(PYTHON, "-m", "ruff", "check", "--fix", ".")
    print(f"unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
