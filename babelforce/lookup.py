"""Finding a lead by uid or phone number without paging through the list.

babelforce's list endpoint cannot filter by uid or number, and paging 100 leads at a time costs 1 000 requests
for a 100 000-lead list. Instead, one `GET .../leads?format=csv` export builds an index (uid -> id,
number -> ids) per list. The index is a hint, never the truth: every hit is confirmed by `GET` of that one lead,
and a miss or a stale hit rebuilds the index once. Costs per lookup: warm 1 request, cold 2 (export + GET).
"""

from __future__ import annotations

import csv
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

_NOT_DIGITS = re.compile(r"\D")

# The export carries each lead's `data` as JSON in one field; csv's default limit (128 KiB per field) would make one
# lead with a large payload break every lookup on its list. The limit is process-wide, so only ever raise it.
_FIELD_LIMIT = 64 * 1024 * 1024
if csv.field_size_limit() < _FIELD_LIMIT:
    csv.field_size_limit(_FIELD_LIMIT)


def number_key(number: str) -> str:
    """Digits only: '+49 160 98119998', '+4916098119998' and '4916098119998' are one number to babelforce."""
    return _NOT_DIGITS.sub("", number)


@dataclass(slots=True)
class LeadIndex:
    """uid -> lead id and number digits -> lead id(s) for one list, as of `built_at`."""

    built_at: float
    by_uid: dict[str, str] = field(default_factory=dict)
    # One id as a plain str (the common case, half the memory of a list); a list when a number repeats.
    by_number: dict[str, str | list[str]] = field(default_factory=dict)

    @classmethod
    def from_csv(cls, text: str | bytes, *, built_at: float, encoding: str = "utf-8") -> LeadIndex:
        """Parse a babelforce CSV export; columns are found by header name (id, uid, number), in any order.

        `text` may be the raw bytes of an ASCII-compatible `encoding` (UTF-8, Latin-1 ...): they are decoded one
        line at a time, so a 100 000-lead export (17 MB) is never held a second time as one string.
        ValueError (csv.Error included) when the export cannot be read, so callers have one thing to catch.
        """
        try:
            return cls._parse(_lines(text, encoding), built_at)
        except csv.Error as bad:
            raise ValueError(f"lead export is not valid CSV: {bad}") from None

    @classmethod
    def _parse(cls, lines: Iterator[str], built_at: float) -> LeadIndex:
        index = cls(built_at=built_at)
        rows = csv.reader(lines)
        header = next(rows, None)
        if header is None:
            return index
        names = [name.strip().lstrip("\ufeff").lower() for name in header]
        try:
            id_col, uid_col, number_col = names.index("id"), names.index("uid"), names.index("number")
        except ValueError as missing:
            raise ValueError(f"lead export has no {missing.args[0].split()[0]} column") from None
        width = max(id_col, uid_col, number_col)
        for row in rows:
            if len(row) > width:
                index.add(row[id_col].replace("-", "").lower(), row[uid_col], row[number_col])
        return index

    def add(self, lead_id: str, uid: str | None, number: str | None) -> None:
        if uid:
            self.by_uid[uid] = lead_id
        if number:
            key = number_key(number)
            present = self.by_number.get(key)
            if present is None:
                self.by_number[key] = lead_id
            elif isinstance(present, str):
                if present != lead_id:
                    self.by_number[key] = [present, lead_id]
            elif lead_id not in present:
                present.append(lead_id)

    def remove(self, lead_id: str, uid: str | None, number: str | None) -> None:
        if uid and self.by_uid.get(uid) == lead_id:
            del self.by_uid[uid]
        if number:
            key = number_key(number)
            present = self.by_number.get(key)
            if present == lead_id:
                del self.by_number[key]
            elif isinstance(present, list) and lead_id in present:
                present.remove(lead_id)
                if len(present) == 1:
                    self.by_number[key] = present[0]

    def ids_for_number(self, number: str) -> list[str]:
        present = self.by_number.get(number_key(number))
        if present is None:
            return []
        return [present] if isinstance(present, str) else list(present)


def _lines(text: str | bytes, encoding: str) -> Iterator[str]:
    """The lines of `text`, each with its "\n" (csv joins a quoted field's lines back), split on "\n" only, as
    io.StringIO does; bytes are decoded per line (a "\n" byte is never inside a character in these encodings)."""
    newline: str | bytes = b"\n" if isinstance(text, bytes) else "\n"
    start, size = 0, len(text)
    while start < size:
        end = text.find(newline, start)  # type: ignore[arg-type]
        end = size if end < 0 else end + 1
        line = text[start:end]
        yield line.decode(encoding, "replace") if isinstance(line, bytes) else line
        start = end


class IndexCache:
    """The most recently used lists' indexes (LRU), so memory stays bounded however many lists are used."""

    def __init__(self, max_lists: int = 8) -> None:
        self._max_lists = max_lists
        self._indexes: OrderedDict[str, LeadIndex] = OrderedDict()

    def get(self, list_id: str) -> LeadIndex | None:
        index = self._indexes.get(list_id)
        if index is not None:
            self._indexes.move_to_end(list_id)
        return index

    def put(self, list_id: str, index: LeadIndex) -> None:
        self._indexes[list_id] = index
        self._indexes.move_to_end(list_id)
        while len(self._indexes) > self._max_lists:
            self._indexes.popitem(last=False)

    def discard(self, list_id: str) -> None:
        self._indexes.pop(list_id, None)
