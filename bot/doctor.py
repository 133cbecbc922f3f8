"""`leadbot doctor`: check a real installation before going live, with the settings `leadbot run` uses.

Runs the checks of bot/doctor_checks.py in order and prints each result as it comes (bot/doctor_report.py renders
them); exit status 0 when none failed, 1 otherwise. Read-only, save `--write-check LIST LEAD`, which writes one lead's
rank back unchanged, recorded first in the audit trail leadbot run uses (LEADBOT_DB). No secret is printed: every
line is redacted against the settings' secret values.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import TextIO

from .doctor_checks import CHECKS, Doctor, Options
from .doctor_report import CheckResult, Redactor, as_json, passed, render, summary
from .run import configure_logging

#: Environment variables that hold secrets: redacted from the report even when the settings could not be loaded.
SECRET_VARIABLES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "BABELFORCE_PASSWORD",
    "BABELFORCE_CLIENT_SECRET",
    "BABELFORCE_ACCESS_TOKEN",
)


def run(args: argparse.Namespace) -> int:
    configure_logging("WARNING")  # the report is the output; the client's warnings (masked) go to stderr
    write = (args.write_check[0], args.write_check[1]) if args.write_check else None
    options = Options(http=args.http, list_name=args.list_name, write_check=write)
    progress = sys.stderr if args.json else sys.stdout
    results = asyncio.run(diagnose(options, progress))
    if args.json:
        print(json.dumps(as_json(results), ensure_ascii=False, indent=2), flush=True)
    return 0 if passed(results) else 1


async def diagnose(options: Options, out: TextIO) -> list[CheckResult]:
    """Run every check in order, printing each result to `out` as soon as it is known; the results, redacted."""
    doctor = Doctor(options)
    results: list[CheckResult] = []
    print("leadbot doctor: checking this installation with the settings of leadbot run", file=out, flush=True)
    try:
        for check in CHECKS:
            async for result in check(doctor):
                redacted = _redacted(result, _redactor(doctor))
                results.append(redacted)
                for line in render(redacted):
                    print(line, file=out, flush=True)
    finally:
        await doctor.aclose()
    print(summary(results), file=out, flush=True)
    return results


def _redactor(doctor: Doctor) -> Redactor:
    return Redactor([*doctor.secrets(), *(os.environ.get(name) for name in SECRET_VARIABLES)])


def _redacted(result: CheckResult, redact: Redactor) -> CheckResult:
    return CheckResult(
        redact(result.name),
        result.status,
        redact(result.detail),
        redact(result.fix) if result.fix is not None else None,
        tuple(redact(fact) for fact in result.facts),
    )
