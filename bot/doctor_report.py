"""What `leadbot doctor` found, and how it is shown: check results as data, rendered as text lines or JSON.

Pure: nothing here calls Slack or babelforce (bot/doctor_checks.py does), so the wording is tested without servers.
Every line passes through `Redactor` before it is printed: a check's text comes partly from the servers' answers,
and a secret must never reach the screen even if one of them echoed it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"  # not run: not needed with these settings, or an earlier check it depends on failed


MARKS = {Status.PASS: "✓", Status.FAIL: "✗", Status.SKIP: "–"}
INDENT = "    "


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One line of the report: `name` (what was checked), `detail` (what was found), `fix` (what to do, for a
    failure) and `facts` (further lines worth reading either way, e.g. the campaign → list map)."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    facts: tuple[str, ...] = ()

    @classmethod
    def passed(cls, name: str, detail: str, facts: Iterable[str] = ()) -> CheckResult:
        return cls(name, Status.PASS, detail, facts=tuple(facts))

    @classmethod
    def failed(cls, name: str, detail: str, fix: str, facts: Iterable[str] = ()) -> CheckResult:
        return cls(name, Status.FAIL, detail, fix, tuple(facts))

    @classmethod
    def skipped(cls, name: str, why: str) -> CheckResult:
        return cls(name, Status.SKIP, why)


class Redactor:
    """Replaces every known secret value in a text with [secret]. Values shorter than 4 characters are not
    redacted (they would blank out ordinary words; no real token is that short)."""

    MIN_LENGTH = 4

    def __init__(self, secrets: Iterable[str | None]) -> None:
        known = {value.strip() for value in secrets if value and len(value.strip()) >= self.MIN_LENGTH}
        self._secrets = sorted(known, key=len, reverse=True)  # a secret inside a longer one goes with the longer

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[secret]")
        return text


def render(result: CheckResult) -> list[str]:
    """The result as text lines: the mark and name with what was found, then its facts and, for a failure, what to
    do."""
    lines = [f"{MARKS[result.status]} {result.name}: {result.detail}"]
    lines += [f"{INDENT}· {fact}" for fact in result.facts]
    if result.fix:
        lines.append(f"{INDENT}→ what to do: {result.fix}")
    return lines


def passed(results: Sequence[CheckResult]) -> bool:
    return not any(result.status is Status.FAIL for result in results)


def summary(results: Sequence[CheckResult]) -> str:
    """The last line: the verdict in one sentence."""
    failed = sum(result.status is Status.FAIL for result in results)
    checked = sum(result.status is not Status.SKIP for result in results)
    skipped = len(results) - checked
    not_run = f" ({skipped} not run)" if skipped else ""
    if not failed:
        return f"All {checked} checks passed{not_run}: leadbot can reach Slack and babelforce with these settings."
    return (
        f"{failed} of {checked} checks failed{not_run}: fix the lines marked {MARKS[Status.FAIL]}, "
        "then run leadbot doctor again."
    )


def as_json(results: Sequence[CheckResult]) -> dict[str, Any]:
    """The report as one JSON object (`leadbot doctor --json`)."""
    return {
        "ok": passed(results),
        "checks": [
            {
                "name": result.name,
                "status": result.status.value,
                "detail": result.detail,
                "fix": result.fix,
                "facts": list(result.facts),
            }
            for result in results
        ],
        "summary": summary(results),
    }
