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
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,6}")

# The export carries each lead's `data` as JSON in one field; csv's default limit (128 KiB per field) would make one
# lead with a large payload break every lookup on its list. The limit is process-wide, so only ever raise it.
_FIELD_LIMIT = 64 * 1024 * 1024
if csv.field_size_limit() < _FIELD_LIMIT:
    csv.field_size_limit(_FIELD_LIMIT)


def number_key(number: str) -> str:
    """Digits only: '+49 160 98119998', '+4916098119998' and '4916098119998' are one number to babelforce."""
    return _NOT_DIGITS.sub("", number)


def uid_key(uid: str) -> str:
    """A uid with case and every space (surrounding or inner) ignored: 'LEAD-5', ' lead-5' and 'lead -5' are one
    key. babelforce treats them as different uids; a supervisor reading a list does not, hence the warning."""
    return "".join(uid.split()).casefold()


@dataclass(frozen=True, slots=True)
class LeadStanding:
    """One lead's place in the dial order as the export gives it (None: the export has no such value)."""

    id: str
    uid: str
    rank: int | None
    status: str | None


@dataclass(slots=True)
class ListStandings:
    """Every lead's rank and status from one export, for `/lead rank … top`. `has_ranks` / `has_statuses`: whether
    the export has those columns at all (a missing column is not the same as a lead without a value)."""

    leads: list[LeadStanding] = field(default_factory=list)
    has_ranks: bool = False
    has_statuses: bool = False


@dataclass(slots=True)
class LeadIndex:
    """uid -> lead id and number digits -> lead id(s) for one list, as of `built_at`."""

    built_at: float
    by_uid: dict[str, str] = field(default_factory=dict)
    # One id as a plain str (the common case, half the memory of a list); a list when a number repeats.
    by_number: dict[str, str | list[str]] = field(default_factory=dict)
    # uid_key -> id(s), built on first use (only the similar-uid warning needs it), then kept in step by add/remove.
    _by_uid_key: dict[str, str | list[str]] | None = field(default=None, repr=False, compare=False)

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
    def with_standings(
        cls, text: str | bytes, *, built_at: float, encoding: str = "utf-8"
    ) -> tuple[LeadIndex, ListStandings]:
        """The index and every lead's rank and status, from one read of the export (see `from_csv`)."""
        standings = ListStandings()
        try:
            return cls._parse(_lines(text, encoding), built_at, standings), standings
        except csv.Error as bad:
            raise ValueError(f"lead export is not valid CSV: {bad}") from None

    @classmethod
    def _parse(cls, lines: Iterator[str], built_at: float, standings: ListStandings | None = None) -> LeadIndex:
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
        if standings is None:
            for row in rows:
                if len(row) > width:
                    index.add(row[id_col].replace("-", "").lower(), row[uid_col], row[number_col])
            return index
        rank_col = names.index("rank") if "rank" in names else None
        status_col = names.index("status") if "status" in names else None
        standings.has_ranks, standings.has_statuses = rank_col is not None, status_col is not None
        for row in rows:
            if len(row) <= width:
                continue
            lead_id = row[id_col].replace("-", "").lower()
            index.add(lead_id, row[uid_col], row[number_col])
            rank = _cell(row, rank_col)
            status = _cell(row, status_col)
            standings.leads.append(
                LeadStanding(
                    lead_id,
                    row[uid_col],
                    int(rank) if rank is not None and _WHOLE_NUMBER.fullmatch(rank) else None,
                    status or None,
                )
            )
        return index

    def add(self, lead_id: str, uid: str | None, number: str | None) -> None:
        if uid:
            self.by_uid[uid] = lead_id
            if self._by_uid_key is not None:
                _put(self._by_uid_key, uid_key(uid), lead_id)
        if number:
            _put(self.by_number, number_key(number), lead_id)

    def remove(self, lead_id: str, uid: str | None, number: str | None) -> None:
        if uid and self.by_uid.get(uid) == lead_id:
            del self.by_uid[uid]
            if self._by_uid_key is not None:
                _drop(self._by_uid_key, uid_key(uid), lead_id)
        if number:
            _drop(self.by_number, number_key(number), lead_id)

    def ids_for_number(self, number: str) -> list[str]:
        return _ids(self.by_number.get(number_key(number)))

    def ids_for_uid_key(self, uid: str) -> list[str]:
        """Ids of the leads whose uid equals `uid` once case and spaces are ignored (the exact uid included).
        The first call builds the key map from `by_uid` (one pass); later ones are one dict lookup."""
        if self._by_uid_key is None:
            self._by_uid_key = {}
            for known, lead_id in self.by_uid.items():
                _put(self._by_uid_key, uid_key(known), lead_id)
        return _ids(self._by_uid_key.get(uid_key(uid)))


def _put(mapping: dict[str, str | list[str]], key: str, lead_id: str) -> None:
    """Add an id under a key that several leads may share (one id as a plain str, more as a list)."""
    present = mapping.get(key)
    if present is None:
        mapping[key] = lead_id
    elif isinstance(present, str):
        if present != lead_id:
            mapping[key] = [present, lead_id]
    elif lead_id not in present:
        present.append(lead_id)


def _drop(mapping: dict[str, str | list[str]], key: str, lead_id: str) -> None:
    present = mapping.get(key)
    if present == lead_id:
        del mapping[key]
    elif isinstance(present, list) and lead_id in present:
        present.remove(lead_id)
        if len(present) == 1:
            mapping[key] = present[0]


def _ids(present: str | list[str] | None) -> list[str]:
    if present is None:
        return []
    return [present] if isinstance(present, str) else list(present)


def _cell(row: list[str], column: int | None) -> str | None:
    """A row's value in an optional column, stripped; None when the column is absent or the row too short."""
    if column is None or column >= len(row):
        return None
    return row[column].strip()


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
