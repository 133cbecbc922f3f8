"""Reply pieces shared by the write pipeline and undo."""

from __future__ import annotations

from dataclasses import replace

from commands.blocks import LeadReport

#: A change refused because its audit record could not be written (no record, no change).
NOT_RECORDED = "{reason} Nothing was changed, because leadbot makes no change it cannot record; tell whoever runs it."


def with_note(report: LeadReport, note: str) -> LeadReport:
    """The report with one more note under the card."""
    return replace(report, notes=(*report.notes, note))
