"""Finding leads without paging through a list: one index per list, built from its CSV export.

babelforce's list endpoint cannot filter by uid, number or data, and paging 100 leads at a time costs 1 000 requests
for a 100 000-lead list. Instead, one `GET .../leads?format=csv` export builds a `LeadIndex` per list. It serves two
readers:

- lookups by uid or number (`id_for_uid`, `ids_for_number`): a hint, never the truth. Every hit is confirmed by
  `GET` of that one lead, and a miss or a stale hit rebuilds the index once. Warm 1 request, cold 2.
- `/lead find` (`search`): uid, number, rank, status and the data values (casefolded, for a case-insensitive
  substring search) of every lead, as of the export.
- the look-alike warnings (`ids_for_uid_key`: uids equal once case and spaces are ignored) and `/lead rank … top`
  (`standings`: every lead's rank and status from the same export).

The index is columnar: one bytes blob or array per column, never a Python object per lead. At 1 000 000 leads that
is about 100 MB instead of the 1 GB+ a dict of tuples takes, and a substring search is one `bytes.find` over the
text column (bench/index_structures.py measures the choices; docs/performance.md has the figures).

babelforce's spec says only that the export is `text/csv`; nobody outside babelforce has shown its columns. So the
export's shape is read, not assumed (`sniff_export`, `ExportShape`): the delimiter (comma, semicolon, tab, pipe, or
an Excel `sep=` first line), a BOM, the charset (Content-Type's, else UTF-8 falling back to cp1252), header names
without case and with aliases (`FIELD_ALIASES`), and spaces around fields. An export that still cannot serve
lookups raises `ExportUnusable` (its `shape.problem` says why); the client then pages the JSON API instead.
"""

from __future__ import annotations

import array
import codecs
import contextlib
import csv
import gc
import io
import json
import re
import struct
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import accumulate, chain, compress, islice
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

if TYPE_CHECKING:
    from .client import BabelforceClient

_NOT_DIGITS = re.compile(r"\D")
_HEX32 = re.compile(r"[0-9a-f]{32}")

# The export carries each lead's `data` as JSON in one field; csv's default limit (128 KiB per field) would make one
# lead with a large payload break every lookup on its list. The limit is process-wide, so only ever raise it.
_FIELD_LIMIT = 64 * 1024 * 1024
if csv.field_size_limit() < _FIELD_LIMIT:
    csv.field_size_limit(_FIELD_LIMIT)

#: Rows parsed and stored per step: big enough that per-column work runs in C, small enough to stay a few MB.
BATCH_ROWS = 4096
#: Separates a lead's searchable values in the text column; rows are separated by "\n". A search text with either
#: character matches nothing (the bot refuses control characters before it gets here).
FIELD_SEP = "\x1f"
ROW_SEP = "\n"
_QWORD = struct.Struct("<q")
_PLUS_ONE = (1).__add__
_NO_RANK = -(2**31)  # a rank the export did not carry (babelforce's ranks are -32768..32767)
_RANK_DIGITS_LIMIT = 10**6  # standings read a rank of more than 6 digits as none (as the dict index did)
_INT32 = struct.Struct("<i")
#: `ListStandings.by_rank` finds at most this many leads rank by rank; more are sorted.
_PARTIAL_RANKS_MAX = 256
#: Ids and uids whose places one ListStandings remembers (the hopper's leads, the leads asked about).
_PLACES_KEPT = 4096
_MAX_NUMBER_DIGITS = 18  # 1 + 18 digits still fit a signed 64-bit integer
#: Columns babelforce's lead has as its own fields; any other column of an export is read as a data variable.
LEAD_FIELDS = frozenset(
    {
        "id",
        "uid",
        "number",
        "number2",
        "number3",
        "rank",
        "status",
        "callcount",
        "duration",
        "datecreated",
        "lastupdated",
        "datecalled",
        "listid",
        "campaignid",
        "callerid",
        "calledsincereset",
        "callback",
        "data",
    }
)
#: Header names read as each of a lead's fields, compared as `header_key` gives them (no case, no spaces, "_", "-" or
#: "."): the field's own name first, then names other exports use. An alias names the field only when no column has
#: the field's own name; otherwise that column stays a data variable (a CRM's `externalId` next to a `uid`).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "leadid"),
    "uid": ("uid", "leaduid", "externalid", "externaluid"),
    "number": ("number", "phone", "phonenumber", "leadnumber", "telephone", "telephonenumber"),
    "rank": ("rank", "leadrank"),
    "status": ("status", "leadstatus", "dialstatus"),
    "data": ("data", "leaddata"),
}
#: Without these three columns an export cannot serve lookups.
REQUIRED_FIELDS = ("id", "uid", "number")
#: Delimiters a header line is tried with, in this order of preference (an Excel `sep=` line may name any other).
DELIMITERS = (",", ";", "\t", "|")
#: Each delimiter in words, for logs and reports.
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
#: How much of an export's start is read to find its shape; a header line longer than this is not looked for.
HEAD_LIMIT = 1 << 20
#: Leads of an export kept in its ExportShape, for a check against the JSON API.
SAMPLE_LEADS = 5
_KEY_NOISE = re.compile(r"[\s_.\-]+")
_EXCEL_SEP_LINE = re.compile(r"sep=(.)[ \t]*(?:\r\n|\n|\r|$)", re.IGNORECASE)
_UTF8_BOM = codecs.BOM_UTF8
_WIDE_BOMS = ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_LATIN1_FOR_UNDEFINED = "leadbot.latin1"


def _latin1_for_undefined(error: UnicodeError) -> tuple[str, int]:
    """The five bytes cp1252 leaves undefined, read as ISO-8859-1 does (as browsers read "windows-1252")."""
    assert isinstance(error, UnicodeDecodeError)
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error(_LATIN1_FOR_UNDEFINED, _latin1_for_undefined)


def header_key(name: str) -> str:
    """A header name as compared with FIELD_ALIASES and LEAD_FIELDS: 'Lead ID', 'lead_id' and 'leadId' are one."""
    return _KEY_NOISE.sub("", name.replace("\ufeff", "")).casefold()


def number_key(number: str) -> str:
    """Digits only: '+49 160 98119998', '+4916098119998' and '4916098119998' are one number to babelforce."""
    return _NOT_DIGITS.sub("", number)


def uid_key(uid: str) -> str:
    """A uid with case and every space (surrounding or inner) ignored: 'LEAD-5', ' lead-5' and 'lead -5' are one
    key. babelforce treats them as different uids; a supervisor reading a list does not, hence the warning."""
    return "".join(uid.split()).casefold()


def _uid_key_hash(uid: str) -> int:
    """hash(uid_key(uid)) as the uid-key column stores it; 0 for a uid that is empty once spaces are gone."""
    key = uid_key(uid) if uid else ""
    return hash(key) if key else 0


def _number_code(number: str | None) -> int:
    """A number's digits as one integer, leading zeros kept by a leading 1 (0: none, or too long to index)."""
    if not number:
        return 0
    digits = number[1:] if number[:1] == "+" else number
    if not (digits.isascii() and digits.isdigit()):
        digits = number_key(number)
    if not digits or len(digits) > _MAX_NUMBER_DIGITS:
        return 0
    return int("1" + digits)


def _canonical_id(raw: str) -> str:
    """The 32-hex spelling of an id given either way; an id of another shape as it is."""
    lead_id = raw.strip().replace("-", "").lower()
    return lead_id if _HEX32.fullmatch(lead_id) else raw.strip()


def _searchable(value: Any) -> str:
    """A data value as the text a search looks in."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_SEPARATORS = str.maketrans({FIELD_SEP: " "})


def _separated(uid: str, values: dict[str, Any]) -> str:
    """A row's text column with any separator inside its uid or values made a space, so values stay apart."""
    parts = [uid, *map(_searchable, values.values())]
    return FIELD_SEP.join(part.translate(_SEPARATORS) for part in parts)


def _is_ascii(texts: list[str]) -> bool:
    return "".join(texts).isascii()


def _ranks(raw: list[str]) -> array.array[int]:
    """The rank column; a rank that is missing or not a whole number is stored as none."""
    try:
        return array.array("i", map(int, raw))
    except (ValueError, OverflowError):
        return array.array("i", map(_rank, raw))


def _number_codes(numbers: list[str]) -> array.array[int]:
    """The number column as _number_code values, in one pass over the batch when every number is + and digits."""
    joined = "".join(numbers)
    if joined.replace("+", "").isdigit() and joined.isascii() and all(number[:1] != "" for number in numbers):
        digits = [number[1:] if number[:1] == "+" else number for number in numbers]
        lengths = list(map(len, digits))
        if min(lengths) > 0 and max(lengths) <= _MAX_NUMBER_DIGITS and "+" not in "".join(digits):
            return array.array("q", map(int, ("1" + "\n1".join(digits)).split("\n")))
    return array.array("q", map(_number_code, numbers))


def _data_values(raw: str) -> dict[str, Any]:
    """The data variables of one export `data` field: a JSON object's items; other JSON, or text that is not JSON,
    is one value named `data` (so it is still searched)."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return {"data": raw}
    return _as_variables(value)


def _as_variables(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if value is None or value == []:
        return {}
    return {"data": value}


def _data_of(raws: list[str]) -> list[dict[str, Any]]:
    """The data variables of a batch of `data` fields. They are parsed as one JSON array (one call instead of one
    per lead: the per-call cost was most of an index's build time) when every field is empty or one JSON object;
    otherwise, or when that does not give one object per field, field by field."""
    if all(not raw or (raw[:1] == "{" and raw[-1:] == "}") for raw in raws):
        try:
            parsed = json.loads("[" + ",".join([raw or "null" for raw in raws]) + "]")
        except (ValueError, RecursionError):
            parsed = None
        if (
            parsed is not None
            and len(parsed) == len(raws)
            and all(
                isinstance(value, dict) or (value is None and not raw) for value, raw in zip(parsed, raws, strict=True)
            )
        ):
            return [value or {} for value in parsed]
    return list(map(_data_values, raws))


@dataclass(frozen=True, slots=True)
class IndexedLead:
    """One lead as its list's export had it. `matched`: where the search text was found (`id`, `uid`, `number`, or
    the data variable's name; empty when the variable cannot be told)."""

    id: str
    uid: str | None
    number: str | None
    rank: int | None
    status: str | None
    matched: str = ""


@dataclass(frozen=True, slots=True)
class LeadStanding:
    """One lead's place in the dial order as the export gives it (None: the export has no such value)."""

    id: str
    uid: str
    rank: int | None
    status: str | None


class ListStandings:
    """Every lead's rank and status from one export, in list order (the export's row order: the order leads were
    loaded), for queue positions, `/lead hopper`'s next batch and `/lead rank … top`. `has_ranks` / `has_statuses`:
    whether the export has those columns at all (a missing column is not the same as a lead without a value).

    Columnar, never a Python object per lead unless asked: a rank column (array), a status code column (bytes) and
    the leads' ids and uids read from the lookup index they came from (`LeadIndex.standings`), or from a list of
    `LeadStanding` given to the constructor. `leads` builds the whole list of `LeadStanding` on first use (slow for
    a big list: readers that go through every lead use `selection` and the methods that take one). A place is a
    lead's 0-based position in list order. Never changes once made."""

    __slots__ = ("_codes", "_lazy", "_leads", "_names", "_ranks", "_source", "has_ranks", "has_statuses")

    def __init__(self, leads: Iterable[LeadStanding] = (), has_ranks: bool = False, has_statuses: bool = False) -> None:
        given = list(leads)
        names: dict[str | None, int] = {None: 0}
        for standing in given:
            if standing.status not in names and len(names) < 256:
                names[standing.status] = len(names)
        self.has_ranks = has_ranks
        self.has_statuses = has_statuses
        self._ranks = array.array("i", [_stored_rank(standing.rank) for standing in given])
        self._codes: bytes | None = None  # None: more than 255 statuses (never in practice); read from the leads
        if len(names) < 256:
            self._codes = bytes([names[standing.status] for standing in given])
        self._names: tuple[str | None, ...] = tuple(names)
        self._source: _GivenLeads | _IndexRows = _GivenLeads(given)
        self._leads: list[LeadStanding] | None = given
        self._lazy: dict[str, Any] = {}

    @classmethod
    def _of_columns(
        cls,
        ranks: array.array[int],
        codes: bytes,
        names: tuple[str | None, ...],
        source: _IndexRows,
        *,
        has_ranks: bool,
        has_statuses: bool,
    ) -> ListStandings:
        made = cls.__new__(cls)
        made.has_ranks, made.has_statuses = has_ranks, has_statuses
        made._ranks, made._codes, made._names, made._source = ranks, codes, names, source
        made._leads, made._lazy = None, {}
        return made

    def __len__(self) -> int:
        return len(self._ranks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ListStandings):
            return NotImplemented
        return (self.has_ranks, self.has_statuses, self.leads) == (other.has_ranks, other.has_statuses, other.leads)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ListStandings({len(self)} leads, has_ranks={self.has_ranks}, has_statuses={self.has_statuses})"

    @property
    def leads(self) -> list[LeadStanding]:
        """Every lead, in list order (built on first use: about a microsecond a lead)."""
        if self._leads is None:
            self._leads = [self.standing(place) for place in range(len(self))]
        return self._leads

    def standing(self, place: int) -> LeadStanding:
        lead_id, uid = self._source.id_and_uid(place)
        return LeadStanding(lead_id, uid, self.rank_at(place), self.status_at(place))

    def rank_at(self, place: int) -> int | None:
        rank = self._ranks[place]
        return None if rank == _NO_RANK else rank

    def status_at(self, place: int) -> str | None:
        if self._codes is None:
            return self._source.status_at(place)
        return self._names[self._codes[place]]

    def places_of(self, ids: Iterable[str | None] = (), uids: Iterable[str | None] = ()) -> list[int]:
        """The places of the leads with these ids or uids, in list order. Each id or uid is looked for once per
        standings (a scan of the index's column), then remembered: the hopper's leads are asked for again and again."""
        known: dict[tuple[bool, str], list[int]] = self._lazy.setdefault("places", {})
        if len(known) > _PLACES_KEPT:
            known.clear()
        found: set[int] = set()
        for by_uid, keys in ((False, ids), (True, uids)):
            for key in keys:
                if not key:
                    continue
                places = known.get((by_uid, key))
                if places is None:
                    places = known[by_uid, key] = (
                        self._source.places_of_uid(key) if by_uid else self._source.places_of_id(key)
                    )
                found.update(places)
        return sorted(found)

    def ranks_of(self, ids: Iterable[str | None]) -> dict[str, int | None]:
        """The rank of each lead among `ids` that the standings have."""
        ranks: dict[str, int | None] = {}
        for place in self.places_of(ids):
            ranks[self._source.id_and_uid(place)[0]] = self.rank_at(place)
        return ranks

    def selection(
        self,
        statuses: Collection[str] | None = None,
        *,
        not_ids: Iterable[str | None] = (),
        not_uids: Iterable[str | None] = (),
    ) -> bytearray:
        """One byte per lead, in list order: 1 for a lead whose status is in `statuses` (every lead when None, or when
        the export has no status column) and whose id is not in `not_ids` nor its uid in `not_uids`; else 0. Made
        in a few C-level calls (`bytes.translate`), then read with `bytearray.count` / `find` or the methods below."""
        count = len(self)
        if statuses is None or not self.has_statuses:
            chosen = bytearray(b"\x01") * count
        elif self._codes is None:
            chosen = bytearray([self.status_at(place) in statuses for place in range(count)])
        else:
            table = bytes([name in statuses for name in self._names]).ljust(256, b"\x00")
            chosen = bytearray(self._codes.translate(table))
        for place in self.places_of(not_ids, not_uids):
            chosen[place] = 0
        return chosen

    def count_ranked(self, chosen: bytearray, than: int, *, higher: bool) -> int:
        """How many chosen leads have a rank higher (or lower) than `than`; leads without a rank do not count."""
        better = than.__lt__ if higher else than.__gt__
        count = sum(map(better, compress(self._ranks, chosen)))
        if better(_NO_RANK):
            count -= self.count_unranked(chosen)
        return count

    def count_unranked(self, chosen: bytearray) -> int:
        """How many chosen leads have no rank."""
        return sum(chosen[place] for place in self._unranked_places())

    def by_rank(self, chosen: bytearray, limit: int | None = None, *, highest: bool) -> list[int]:
        """The places of the chosen leads that have a rank, the highest (or lowest) rank first, equal ranks in list
        order; only the first `limit` of them (found rank by rank without sorting the list)."""
        if limit is not None and limit <= 0:
            return []
        if limit is None or limit > _PARTIAL_RANKS_MAX:
            ranked = chosen
            if self._unranked_places():
                ranked = bytearray(chosen)
                for place in self._unranked_places():
                    ranked[place] = 0
            places = list(compress(range(len(self)), ranked))
            places.sort(key=self._ranks.__getitem__, reverse=highest)  # stable, also reversed: ties in list order
            return places if limit is None else places[:limit]
        values = set(compress(self._ranks, chosen))
        values.discard(_NO_RANK)
        raw = self._rank_bytes()
        found: list[int] = []
        for value in sorted(values, reverse=highest)[:limit]:  # each has a chosen lead: `limit` values will do
            pattern = _INT32.pack(value)
            at = raw.find(pattern)
            while at != -1:
                if at % 4:
                    at = raw.find(pattern, at + 1)
                    continue
                if chosen[at // 4]:
                    found.append(at // 4)
                    if len(found) == limit:
                        return found
                at = raw.find(pattern, at + 4)
        return found

    def unranked(self, chosen: bytearray, limit: int | None = None) -> list[int]:
        """The places of the chosen leads without a rank, in list order (the first `limit`)."""
        places = [place for place in self._unranked_places() if chosen[place]]
        return places if limit is None else places[: max(limit, 0)]

    def _unranked_places(self) -> list[int]:
        places = self._lazy.get("unranked")
        if places is None:
            places = []
            raw, pattern = self._rank_bytes(), _INT32.pack(_NO_RANK)
            at = raw.find(pattern)
            while at != -1:
                if at % 4 == 0:
                    places.append(at // 4)
                at = raw.find(pattern, at + 1)
            self._lazy["unranked"] = places
        return places

    def _rank_bytes(self) -> bytes:
        raw = self._lazy.get("rank_bytes")
        if raw is None:
            raw = self._lazy["rank_bytes"] = self._ranks.tobytes()
        return raw


class _GivenLeads:
    """The ids and uids of standings made from a list of LeadStanding."""

    __slots__ = ("_by_id", "_by_uid", "_leads")

    def __init__(self, leads: list[LeadStanding]) -> None:
        self._leads = leads
        self._by_id: dict[str, list[int]] | None = None
        self._by_uid: dict[str, list[int]] | None = None

    def id_and_uid(self, place: int) -> tuple[str, str]:
        standing = self._leads[place]
        return standing.id, standing.uid

    def status_at(self, place: int) -> str | None:
        return self._leads[place].status

    def places_of_id(self, lead_id: str) -> list[int]:
        if self._by_id is None:
            self._by_id = {}
            for place, standing in enumerate(self._leads):
                self._by_id.setdefault(standing.id, []).append(place)
        return self._by_id.get(lead_id, [])

    def places_of_uid(self, uid: str) -> list[int]:
        if self._by_uid is None:
            self._by_uid = {}
            for place, standing in enumerate(self._leads):
                self._by_uid.setdefault(standing.uid, []).append(place)
        return self._by_uid.get(uid, [])


class _IndexRows:
    """The ids and uids of standings made from a LeadIndex: read from its rows (never changed once written), through
    the list order as it was when the standings were made. Slot s is where row s stood in the index then: it shows
    row `show.get(s, s)` (a lead written since the export shows its newest row in its first row's slot), unless it
    is `dropped` (an older version of a lead written since, or a deleted lead). Places are the slots left."""

    __slots__ = ("_dropped", "_dropped_set", "_index", "_keys", "_rows", "_show", "_shown_at")

    def __init__(self, index: LeadIndex, rows: int, show: dict[int, int], dropped: list[int]) -> None:
        self._index = index
        self._rows = rows
        self._show = show
        self._shown_at = {row: slot for slot, row in show.items()}
        self._dropped = dropped
        self._dropped_set = set(dropped)
        # place p is slot p + (the dropped slots before it): with d_i the i-th dropped slot, that is p plus how many
        # d_i - i are <= p (d_i - i never decreases)
        self._keys = [slot - at for at, slot in enumerate(dropped)]

    def _row_at(self, place: int) -> int:
        slot = place + bisect_right(self._keys, place) if self._keys else place
        return self._show.get(slot, slot)

    def id_and_uid(self, place: int) -> tuple[str, str]:
        row = self._row_at(place)
        return self._index.id_of(row), self._index._uid_of(row) or ""

    def status_at(self, place: int) -> str | None:  # only for given leads (the index has at most 255 statuses)
        raise NotImplementedError

    def _places_of_rows(self, rows: Iterable[int]) -> list[int]:
        places = []
        for row in rows:
            slot = self._shown_at.get(row)
            if slot is None:
                if row in self._show or row in self._dropped_set:
                    continue  # an older version of a lead written since, or a deleted lead
                slot = row
            places.append(slot - bisect_left(self._dropped, slot))
        return places

    def places_of_id(self, lead_id: str) -> list[int]:
        return self._places_of_rows(self._index._every_row_of_id(lead_id, self._rows))

    def places_of_uid(self, uid: str) -> list[int]:
        return self._places_of_rows(self._index._every_row_of_uid(uid, self._rows))


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The first `limit` leads that match (exact id, uid or number matches first, then in list order), and how many
    match in all. `exact`: how many of `leads` matched exactly."""

    leads: tuple[IndexedLead, ...]
    total: int
    exact: int = 0


@dataclass(frozen=True, slots=True)
class ExportShape:
    """A list's CSV export as it was read: what `leadbot doctor` prints and what a lookup's log line names.

    `headers` are the header names as sent (surrounding spaces and a BOM aside); `columns` maps our field names
    ("id", "uid", "number", "rank", "status", "data") to the header read as each. `rows`: the leads the export
    held (0 until it was read to the end). `problem`: one sentence saying why lookups cannot use this export (they
    page the JSON API instead), None when they can. `delimiter` and `encoding` are "" when the export was not read
    that far (refused, or a page that is no CSV; `encoding` also for an export given as text). `line_ending`: the
    header line's ("" when none was seen); `padded`: the fields have spaces around them (they are stripped);
    `first_leads`: the export's first leads (their numbers in full: mask them before printing or logging)."""

    delimiter: str = ""
    encoding: str = ""
    bom: bool = False
    excel_sep_line: bool = False
    headers: tuple[str, ...] = ()
    columns: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    problem: str | None = None
    content_type: str | None = None
    line_ending: str = ""
    padded: bool = False
    first_leads: tuple[IndexedLead, ...] = ()

    @property
    def usable(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        """One line for a log or a report: 'delimiter ";", encoding cp1252, BOM, Excel sep= line, id=leadId, …'."""
        delimiter = DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))
        parts = [f"delimiter {delimiter}"] + ([f"encoding {self.encoding}"] if self.encoding else [])
        if self.bom:
            parts.append("BOM")
        if self.excel_sep_line:
            parts.append("Excel sep= line")
        if self.padded:
            parts.append("spaces around fields")
        parts.append(", ".join(f"{name}={header}" for name, header in self.columns.items()) or "no known columns")
        return ", ".join(parts)


class ExportUnusable(ValueError):
    """An export that cannot serve lookups; `shape.problem` says why (the client then pages the JSON API)."""

    def __init__(self, shape: ExportShape) -> None:
        super().__init__(shape.problem)
        self.shape = shape


class _Sniffed(NamedTuple):
    shape: ExportShape
    skip: int  # bytes of BOM before the text
    encoding: str  # the codec to decode with ("utf-8" with `fallback`: cp1252 once bytes are not UTF-8)
    fallback: bool


def sniff_export(head: bytes, content_type: str | None = None) -> ExportShape:
    """The shape of an export from its first bytes (through its header line) and its Content-Type: BOM, charset,
    an Excel `sep=` line, delimiter, headers, and which columns hold id, uid and number. `rows` stays 0; `problem`
    is set when the head already shows that lookups cannot use the export. Never raises."""
    return _sniff(head, content_type).shape


def decode_export(body: bytes, content_type: str | None = None) -> str:
    """A whole export's bytes as text, decoded as an index decodes them (see `_encoding_of`), without its BOM."""
    skip, encoding, fallback = _encoding_of(body, content_type)
    return _Decoder(encoding, fallback)(body[skip:])


def _encoding_of(head: bytes, content_type: str | None) -> tuple[int, str, bool]:
    """How to decode an export: the BOM's length, the codec, and whether it is UTF-8 that falls back to cp1252.

    A BOM decides (as browsers read one): a UTF-8 BOM still falls back, since servers put one before ISO-8859-1 too.
    Else the Content-Type's charset, unless it says UTF-8 or ASCII; else UTF-8, falling back."""
    declared = _declared_charset(content_type)
    if head.startswith(_UTF8_BOM):
        return len(_UTF8_BOM), "utf-8", True
    for bom, wide in _WIDE_BOMS:
        if head.startswith(bom):
            return len(bom), wide, False
    if declared is not None and declared not in ("utf-8", "utf-8-sig", "ascii"):
        return 0, declared, False
    return 0, "utf-8", True


def _sniff(head: bytes, content_type: str | None) -> _Sniffed:
    skip, encoding, fallback = _encoding_of(head, content_type)
    decoder = _Decoder(encoding, fallback)
    body = head[skip:]
    if fallback:
        cut = body.rfind(b"\n") + 1
        body = body[:cut] if cut else body  # whole lines only: a character cut in two is not "not UTF-8"
    text = codecs.getincrementaldecoder(encoding)("replace").decode(body) if not fallback else decoder(body)
    shape = _shape_of_text(text, bom=skip > 0, content_type=content_type)
    return _Sniffed(replace(shape, encoding=decoder.encoding), skip, encoding, fallback)


def _declared_charset(content_type: str | None) -> str | None:
    """The codec named by a Content-Type's charset parameter, None when there is none or Python does not know it."""
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            try:
                return codecs.lookup(value.strip().strip("\"'")).name
            except LookupError:
                return None
    return None


def _shape_of_text(text: str, *, bom: bool = False, content_type: str | None = None) -> ExportShape:
    """The shape of an export's decoded start (see sniff_export)."""
    shape = ExportShape(bom=bom or text.startswith("\ufeff"), content_type=content_type)
    text = text.lstrip("\ufeff")
    sep_line = _EXCEL_SEP_LINE.match(text)
    if sep_line:
        text = text[sep_line.end() :]
        shape = replace(shape, excel_sep_line=True, delimiter=sep_line.group(1))
    start = text.lstrip()[:100].lower()
    if not start:
        return replace(shape, problem="The export is empty: not even a header line.")
    if start.startswith("<"):
        return replace(shape, problem="The export is an HTML or XML page, not CSV.")
    if start[0] in "{[":
        return replace(shape, problem="The export is JSON, not CSV.")
    line, ending = _first_line(text)
    delimiter = shape.delimiter if sep_line else _best_delimiter(line)
    raw = next(csv.reader([line], delimiter=delimiter), [])
    padded = any(name != name.strip() for name in raw)
    if padded:
        raw = next(csv.reader([line], delimiter=delimiter, skipinitialspace=True), [])
    headers = tuple(name.strip() for name in raw)
    positions = _field_columns(headers)
    problem = _missing_columns(headers, positions)
    if problem is not None and _headerless(headers):
        headers, positions = (), {}  # no header line: its "names" are a lead's values, not to be shown
    return replace(
        shape,
        delimiter=delimiter,
        headers=headers,
        columns={name: headers[col] for name, col in positions.items()},
        line_ending=ending,
        padded=padded,
        problem=problem,
    )


def _first_line(text: str) -> tuple[str, str]:
    """The first line of `text` and what ends it ("\\r\\n", "\\n", "\\r", or "" at the end of the text)."""
    ends = [at for at in (text.find("\r"), text.find("\n")) if at != -1]
    if not ends:
        return text, ""
    at = min(ends)
    ending = "\r\n" if text.startswith("\r\n", at) else text[at]
    return text[:at], ending


def _best_delimiter(line: str) -> str:
    """The delimiter that makes the most of a header line: the required columns found, then any known column, then
    the most columns; the earlier of DELIMITERS on a tie."""
    best, best_score = DELIMITERS[0], (-1, -1, -1)
    for delimiter in DELIMITERS:
        names = [name.strip() for name in next(csv.reader([line], delimiter=delimiter, skipinitialspace=True), [])]
        found = _field_columns(names)
        score = (sum(name in found for name in REQUIRED_FIELDS), len(found), len(names))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _field_columns(headers: Sequence[str]) -> dict[str, int]:
    """Which column holds each lead field (see FIELD_ALIASES); a column serves one field at most."""
    keys = [header_key(name) for name in headers]
    found: dict[str, int] = {}
    for name, aliases in FIELD_ALIASES.items():
        for alias in aliases:
            col = next((col for col, key in enumerate(keys) if key == alias and col not in found.values()), None)
            if col is not None:
                found[name] = col
                break
    return found


def _missing_columns(headers: Sequence[str], positions: Mapping[str, int]) -> str | None:
    """Why lookups cannot use an export with these headers, or None. Never quotes a lead's values: a first line that
    holds a phone number or an id is said to be no header line."""
    missing = [name for name in REQUIRED_FIELDS if name not in positions]
    if not missing:
        return None
    if _headerless(headers):
        return "The export has no header line: its first line holds a lead's values, not column names."
    named = " or ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
    shown = ", ".join(headers[:12]) + (", …" if len(headers) > 12 else "")
    return f"The export has no {named} column (its headers: {shown or 'none'})."


_VALUE_LIKE = re.compile(r"\+?[0-9][0-9 ()./-]{5,}")


def _headerless(headers: Sequence[str]) -> bool:
    """Whether a "header line" is a lead's row: a name that is a phone number or an id (6+ digits, or 32 hex)."""
    return any(_VALUE_LIKE.fullmatch(name) or _HEX32.fullmatch(_canonical_id(name)) for name in headers)


class _Decoder:
    """An export's bytes to text, a run of whole lines at a time. UTF-8 (`fallback`) switches to cp1252 for good at
    the first bytes that are not UTF-8: an export written in a Windows code page without saying so, or under a
    BOM or charset that claims UTF-8. `encoding` is the codec in use."""

    def __init__(self, encoding: str, fallback: bool) -> None:
        self.encoding = encoding
        self._try_utf8 = fallback

    def __call__(self, data: bytes) -> str:
        if self._try_utf8:
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                self._try_utf8 = False
                self.encoding = "cp1252"
        if self.encoding == "cp1252":
            return data.decode("cp1252", _LATIN1_FOR_UNDEFINED)
        return data.decode(self.encoding, "replace")


def _read_head(chunks: Iterator[bytes]) -> bytes:
    """An export's first chunks, through its second line break (an Excel sep= line, then the header line), the end
    of the body, or HEAD_LIMIT bytes."""
    head = b""
    while len(head) < HEAD_LIMIT and head.count(b"\n") < 2 and head.count(b"\r") < 2:
        chunk = next(chunks, None)
        if chunk is None:
            break
        head += chunk
    return head


class LeadIndex:
    """Every lead of one list as of `built_at`, column by column (see the module's docstring).

    Rows are only ever appended: a lead written through this client after the export (`upsert`) gets a new row that
    supersedes its old one (in list order, `standings`, it keeps its old row's place), and a deleted lead
    (`discard`) is marked gone. Readers may run in a worker thread while the event loop appends; a search looks only
    at the rows that existed when it started.
    """

    def __init__(
        self, built_at: float, *, has_data: bool = False, columns: Iterable[str] = (), source: str = "export"
    ) -> None:
        self.built_at = built_at
        self.has_data = has_data  # the export carried a data column (or data variables as columns)
        self.columns = frozenset(columns)  # our field names ("rank", "status" ...) and header_key of the others
        self.source = source  # "export": built from the CSV export; "paging": from the JSON API, page by page
        self.shape: ExportShape | None = None  # the export as read (with its problem when source is "paging")
        self._rows = 0
        self._exported = 0  # rows that came from the export itself
        self._ids = bytearray()  # 16 bytes per row: the 32-hex id packed; ids of another shape are in _odd_ids
        self._odd_ids: dict[int, str] = {}
        self._uids = bytearray()  # UTF-8, row after row
        self._uid_ends = array.array("Q")
        self._uid_hashes = bytearray()  # 8 bytes per row: hash(uid), 0 for none; scanned with bytes.find
        # 8 bytes per row: hash(uid_key(uid)), 0 for none; built on first use (only the look-alike warning needs
        # it), then kept in step by every append
        self._uid_key_hashes: bytearray | None = None
        self._numbers = bytearray()  # 8 bytes per row: _number_code, 0 for none
        self._plus = bytearray()  # 1 when the number was written with a leading +
        self._ranks = array.array("i")
        self._wide_ranks = False  # a rank of more than 6 digits was stored: the standings read those as none
        self._status_codes = bytearray()  # 0: none; n: _status_names[n]
        self._status_names: list[str | None] = [None]
        self._status_index: dict[str, int] = {}
        self._shapes = array.array("H")  # which data variables (by name, in order) a row's text column holds
        self._shape_keys: list[tuple[str, ...]] = [()]
        self._shape_index: dict[tuple[str, ...], int] = {(): 0}
        self._text = bytearray()  # casefolded "uid\x1fvalue\x1fvalue...\n" per row, UTF-8
        self._text_starts = array.array("Q")
        self._latest: dict[str, int] = {}  # lead id -> its newest row, for leads upserted since the export
        self._gone: set[str] = set()  # lead ids deleted since the export
        # Where a lead written since the export stands in list order: lead id -> its first row (its export row, or
        # the row it was added with); the standings show its newest row there. `_stale`: rows that are an older or
        # newer version of such a lead, shown nowhere.
        self._places: dict[str, int] = {}
        self._stale: set[int] = set()
        self._version = 0  # changes with every row stored and every lead discarded (see `version`)
        self._lock = threading.Lock()  # appends come from the event loop, searches from worker threads

    # ------------------------------------------------------------------ building

    @classmethod
    def from_csv(cls, text: str | bytes, *, built_at: float, encoding: str = "utf-8") -> LeadIndex:
        """Parse a babelforce CSV export of any shape `sniff_export` reads; columns are found by header name.

        `text` may be the raw bytes of the export in `encoding` (as a Content-Type charset would declare it): they
        are decoded a run of lines at a time, so an export is never held a second time as one string.
        ValueError (ExportUnusable, csv errors included) when the export cannot be read, so callers have one thing
        to catch.
        """
        if isinstance(text, bytes):
            step = 1 << 20
            pieces = (text[at : at + step] for at in range(0, len(text), step))
            return cls.from_export(pieces, built_at=built_at, content_type=f"text/csv; charset={encoding}")
        shape = _shape_of_text(text[:HEAD_LIMIT])
        if shape.problem is not None:
            raise ExportUnusable(shape)
        index = cls._parse(_lines(text), built_at, shape)
        index.shape = replace(shape, rows=index.exported, first_leads=index._first_leads())
        return index

    @classmethod
    def from_chunks(cls, chunks: Iterable[bytes], *, built_at: float, encoding: str = "utf-8") -> LeadIndex:
        """The index of an export arriving as byte chunks in `encoding` (a streamed download): never held whole."""
        return cls.from_export(chunks, built_at=built_at, content_type=f"text/csv; charset={encoding}")

    @classmethod
    def from_export(cls, chunks: Iterable[bytes], *, built_at: float, content_type: str | None = None) -> LeadIndex:
        """The index of an export as babelforce sent it: its body's chunks and its Content-Type. The head is
        sniffed (`sniff_export`), then the body parsed as it arrives. `index.shape` describes what was read.

        ExportUnusable when lookups cannot use the export (no id, uid or number column, not CSV, ...)."""
        source = iter(chunks)
        head = _read_head(source)
        sniffed = _sniff(head, content_type)
        if sniffed.shape.problem is not None:
            raise ExportUnusable(sniffed.shape)
        decoder = _Decoder(sniffed.encoding, sniffed.fallback)
        body = chain((head[sniffed.skip :],), source)
        wide = sniffed.encoding.startswith(("utf-16", "utf-32"))
        lines = _wide_lines(body, decoder) if wide else _lines_of_chunks(body, decoder)
        index = cls._parse(lines, built_at, sniffed.shape)
        index.shape = replace(
            sniffed.shape, encoding=decoder.encoding, rows=index.exported, first_leads=index._first_leads()
        )
        return index

    @classmethod
    def with_standings(
        cls, text: str | bytes, *, built_at: float, encoding: str = "utf-8"
    ) -> tuple[LeadIndex, ListStandings]:
        """The index and every lead's rank and status, from one read of the export (see `from_csv`)."""
        index = cls.from_csv(text, built_at=built_at, encoding=encoding)
        return index, index.standings()

    @classmethod
    def _parse(cls, lines: Iterator[str], built_at: float, shape: ExportShape) -> LeadIndex:
        """The rows after the header line (and an Excel sep= line before it), with the delimiter `shape` found."""
        try:
            with _fewer_collections():
                if shape.excel_sep_line:
                    next(lines, None)
                rows = csv.reader(lines, delimiter=shape.delimiter, skipinitialspace=shape.padded)
                header = next(rows, None)
                names = [name.strip().lstrip("\ufeff").strip() for name in header or ()]
                positions = _field_columns(names)
                problem = _missing_columns(names, positions)
                if problem is not None:
                    raise ExportUnusable(replace(shape, problem=problem))
                used = set(positions.values())
                extra = [
                    (col, name)
                    for col, name in enumerate(names)
                    if col not in used and header_key(name) not in LEAD_FIELDS
                ]
                index = cls(
                    built_at,
                    has_data="data" in positions or bool(extra),
                    columns={*positions, *(header_key(name) for col, name in enumerate(names) if col not in used)},
                )
                layout = _Layout(
                    positions["id"],
                    positions["uid"],
                    positions["number"],
                    positions.get("rank"),
                    positions.get("status"),
                    positions.get("data"),
                    extra,
                    shape.padded,
                )
                while batch := list(islice(rows, BATCH_ROWS)):
                    index._append_batch(batch, layout)
                index._exported = index._rows
                return index
        except csv.Error as bad:
            raise ExportUnusable(replace(shape, problem=f"The export is not valid CSV: {bad}.")) from None

    def _first_leads(self) -> tuple[IndexedLead, ...]:
        return tuple(self.lead(row) for row in range(min(SAMPLE_LEADS, self._exported)))

    def _append_batch(self, batch: list[list[str]], layout: _Layout) -> None:
        """Store a batch of export rows, column by column (rows too short to hold id, uid and number are skipped)."""
        width = layout.width
        shortest = min(map(len, batch))  # one C-level pass: the batch's rows are checked once, not a step per row
        if shortest <= width:
            batch = [row for row in batch if len(row) > width]
            if not batch:
                return
            shortest = min(map(len, batch))
        cell = itemgetter if shortest > layout.full_width else _cell
        column: Callable[[list[str]], list[str]] = _stripped if layout.strip else _as_is
        raw_ids = column(list(map(itemgetter(layout.id_col), batch)))
        uids = column(list(map(itemgetter(layout.uid_col), batch)))
        numbers = column(list(map(itemgetter(layout.number_col), batch)))
        ranks = _ranks(list(map(cell(layout.rank_col), batch))) if layout.rank_col is not None else None
        statuses = column(list(map(cell(layout.status_col), batch))) if layout.status_col is not None else None
        data = _data_of(column(list(map(cell(layout.data_col), batch)))) if layout.data_col is not None else None
        for col, name in layout.extra:
            get = _cell(col)
            if data is None:
                data = [{} for _ in batch]
            for values, row in zip(data, batch, strict=True):
                value = get(row).strip() if layout.strip else get(row)
                if value:
                    values[name] = value
        with self._lock:
            self._store(raw_ids, uids, numbers, ranks, statuses, data)

    def _store(
        self,
        raw_ids: list[str],
        uids: list[str],
        numbers: list[str],
        ranks: array.array[int] | None,
        statuses: list[str] | None,
        data: list[dict[str, Any]] | None,
    ) -> None:
        """Append rows. Each column is converted in a few C-level calls for the whole batch where the values allow
        it (ids all 32 hex, text all ASCII ...), value by value otherwise: the build's cost is mostly here."""
        count = len(raw_ids)
        self._ids += self._packed_ids(raw_ids)
        if _is_ascii(uids):
            self._uids += "".join(uids).encode()
            lengths: Iterable[int] = map(len, uids)
        else:
            encoded = [uid.encode() for uid in uids]
            self._uids += b"".join(encoded)
            lengths = map(len, encoded)
        start = self._uid_ends[-1] if self._uid_ends else 0
        self._uid_ends.extend(islice(accumulate(lengths, initial=start), 1, None))
        self._uid_hashes += array.array("q", [hash(uid) if uid else 0 for uid in uids]).tobytes()
        if self._uid_key_hashes is not None:
            self._uid_key_hashes += array.array("q", map(_uid_key_hash, uids)).tobytes()
        self._numbers += _number_codes(numbers).tobytes()
        self._plus += bytes([number[:1] == "+" for number in numbers])
        if ranks is None:
            self._ranks.extend(array.array("i", [_NO_RANK]) * count)
        else:
            self._ranks.extend(ranks)
            self._wide_ranks = self._wide_ranks or _has_wide_rank(ranks)
        self._status_codes += self._status_column(statuses, count)
        if data is None:
            texts: list[str] = uids
            self._shapes.extend(bytes(count))
        else:
            texts, shapes = self._texts(uids, data)
            self._shapes.extend(shapes)
        joined = ROW_SEP.join(texts) + ROW_SEP
        if joined.count(ROW_SEP) != count:  # a line break inside a value: a space, so "\n" always ends a row
            texts = [text.replace(ROW_SEP, " ") for text in texts]
            joined = ROW_SEP.join(texts) + ROW_SEP
        base = len(self._text)
        if joined.isascii():  # casefold is lower() and one byte per character: the lengths are the str's
            self._text += joined.lower().encode()
            self._text_starts.extend(accumulate(map(_PLUS_ONE, map(len, texts[:-1])), initial=base))
        else:
            encoded_texts = [text.casefold().encode() for text in texts]
            self._text += ROW_SEP.encode().join(encoded_texts) + ROW_SEP.encode()
            self._text_starts.extend(accumulate(map(_PLUS_ONE, map(len, encoded_texts[:-1])), initial=base))
        self._rows += count
        self._version += 1

    def _packed_ids(self, raw_ids: list[str]) -> bytes:
        """16 bytes per id; an id that is not 32 hex digits (dashes and case aside) is kept in _odd_ids."""
        if set(map(len, raw_ids)) == {32}:
            joined = "".join(raw_ids)
            if joined.isascii() and joined.isalnum():
                try:
                    return bytes.fromhex(joined)
                except ValueError:
                    pass
        packed = bytearray()
        for offset, raw in enumerate(raw_ids):
            lead_id = _canonical_id(raw)
            if _HEX32.fullmatch(lead_id):
                packed += bytes.fromhex(lead_id)
            else:
                packed += bytes(16)
                self._odd_ids[self._rows + offset] = lead_id
        return bytes(packed)

    def _status_column(self, statuses: list[str] | None, count: int) -> bytes:
        if statuses is None:
            return bytes(count)
        for status in set(statuses) - self._status_index.keys():
            self._status_code(status)
        return bytes(map(self._status_index.get, statuses, [0] * count))

    def _texts(self, uids: list[str], data: list[dict[str, Any]]) -> tuple[list[str], list[int]]:
        """Each row's text column (uid and data values, before casefolding) and its shape (the data variables'
        names). A separator or line break inside a value is made a space, so rows and values stay apart."""
        texts: list[str] = []
        shapes: list[int] = []
        shape_index = self._shape_index
        for uid, values in zip(uids, data, strict=True):
            if not values:
                shapes.append(0)
                texts.append(uid)
                continue
            keys = tuple(values)
            shape = shape_index.get(keys)
            shapes.append(self._new_shape(keys) if shape is None else shape)
            try:
                texts.append(FIELD_SEP.join((uid, *values.values())))
            except TypeError:  # a number, a boolean or an object among the values
                texts.append(FIELD_SEP.join((uid, *map(_searchable, values.values()))))
        if "".join(texts).count(FIELD_SEP) != sum(map(len, data)):  # never in practice; a match's variable is told
            texts = [_separated(uid, values) for uid, values in zip(uids, data, strict=True)]  # by counting them
        return texts, shapes

    def _status_code(self, status: str) -> int:
        if not status:
            self._status_index[status] = 0
            return 0
        code = self._status_index.get(status)
        if code is None:
            if len(self._status_names) >= 255:  # never in practice: babelforce has a dozen statuses
                return 0
            code = self._status_index[status] = len(self._status_names)
            self._status_names.append(status)
        return code

    def _new_shape(self, keys: tuple[str, ...]) -> int:
        if len(self._shape_keys) >= 65535:  # too many different variable sets: the variable's name is not kept
            return 65535
        shape = self._shape_index[keys] = len(self._shape_keys)
        self._shape_keys.append(keys)
        return shape

    # ------------------------------------------------------------------ changes made through this client

    def upsert(
        self,
        lead_id: str,
        uid: str | None,
        number: str | None,
        *,
        rank: int | None = None,
        status: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """A lead as it is now (added or updated through this client): a new row that supersedes the old one. In list
        order (`standings`) an updated lead keeps its place (babelforce's load order does not change with an
        update) and a new one goes last (it was loaded last). A uid or status the answer did not carry (None) stays
        as the lead's previous row had it (an update does not change the status)."""
        lead_id = _canonical_id(lead_id)
        with self._lock:
            row = self._rows
            place = self._place_of(lead_id, row)
            if lead_id in self._gone and place is not None:  # deleted, and back: loaded again, so last
                self._stale.add(place)
                place = None
                self._latest.pop(lead_id, None)
            if place is None:  # a lead the index does not have: it was loaded last
                place = self._places[lead_id] = row
            previous = self._latest.get(lead_id, place)
            if previous != row:
                if uid is None:
                    uid = self._uid_of(previous)
                if status is None:
                    status = self._status_names[self._status_codes[previous]]
            self._store(
                [lead_id],
                [uid or ""],
                [number or ""],
                array.array("i", [_stored_rank(rank)]),
                [status or ""],
                [{str(key): value for key, value in (data or {}).items()}],
            )
            self._latest[lead_id] = row
            self._gone.discard(lead_id)
            if place != row:
                self._stale.add(row)

    def _place_of(self, lead_id: str, rows: int) -> int | None:
        """The row where a lead stands in list order: its first row before `rows`, found once and then kept in
        `_places` (any later row of it in the export is stale); None for a lead the index does not have."""
        place = self._places.get(lead_id)
        if place is None:
            found = self._every_row_of_id(lead_id, rows)
            if not found:
                return None
            place = self._places[lead_id] = found[0]
            self._stale.update(found[1:])
        return place

    def append_leads(self, leads: Sequence[Any]) -> None:
        """Leads read from the JSON API (the paging fallback; anything with a Lead's id, uid, number, rank, status
        and data), stored as an export's rows are."""
        if not leads:
            return
        with self._lock:
            self._store(
                [lead.id for lead in leads],
                [lead.uid or "" for lead in leads],
                [lead.number or "" for lead in leads],
                array.array("i", [_stored_rank(lead.rank) for lead in leads]),
                [lead.status or "" for lead in leads],
                [{str(key): value for key, value in (lead.data or {}).items()} for lead in leads],
            )
            self._exported = self._rows

    def add(self, lead_id: str, uid: str | None, number: str | None) -> None:
        """A lead whose uid and number are all that is known (its other values stay unknown)."""
        self.upsert(lead_id, uid, number)

    def discard(self, lead_id: str) -> None:
        """A lead deleted through this client."""
        lead_id = _canonical_id(lead_id)
        with self._lock:
            self._place_of(lead_id, self._rows)
            self._gone.add(lead_id)
            self._version += 1

    def remove(self, lead_id: str, uid: str | None = None, number: str | None = None) -> None:
        """A lead gone from the list (`discard`; uid and number are not needed: every row of the lead is gone)."""
        self.discard(lead_id)

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        """Rows stored (an updated lead counts once per version): the index's size, for the cache's budget."""
        return self._rows

    @property
    def version(self) -> int:
        """Changes whenever the index does (a row stored, a lead discarded): standings made at one version are this
        index's as long as it has not changed."""
        return self._version

    @property
    def exported(self) -> int:
        """How many leads the export had."""
        return self._exported

    def id_of(self, row: int) -> str:
        odd = self._odd_ids.get(row)
        return odd if odd is not None else self._ids[row * 16 : row * 16 + 16].hex()

    def _uid_of(self, row: int) -> str | None:
        start = self._uid_ends[row - 1] if row else 0
        uid = self._uids[start : self._uid_ends[row]].decode("utf-8", "replace")
        return uid or None

    def _live(self, row: int) -> bool:
        """Whether a row is the newest version of a lead that still exists (as far as this client knows)."""
        if not self._latest and not self._gone:
            return True
        lead_id = self.id_of(row)
        return lead_id not in self._gone and self._latest.get(lead_id, row) == row

    def id_for_uid(self, uid: str) -> str | None:
        """The id of the lead with this uid (the newest row wins), or None. A uid with spaces around it is also
        looked for without them: an export with spaces around its fields is read stripped."""
        row = self._row_for_uid(uid, self._rows)
        if row is None and uid != uid.strip():
            row = self._row_for_uid(uid.strip(), self._rows)
        return None if row is None else self.id_of(row)

    def _row_for_uid(self, uid: str, rows: int) -> int | None:
        if not uid:
            return None
        wanted = uid.encode()
        pattern = _QWORD.pack(hash(uid))
        end = 8 * rows
        while (at := self._uid_hashes.rfind(pattern, 0, end)) != -1:
            end = at + len(pattern) - 1
            if at % 8:
                continue
            row = at // 8
            start = self._uid_ends[row - 1] if row else 0
            if self._uids[start : self._uid_ends[row]] == wanted and self._live(row):
                return row
        return None

    def ids_for_number(self, number: str) -> list[str]:
        """The ids of every lead with this number's digits, in list order."""
        return [self.id_of(row) for row in self._rows_for_number(_number_code(number))]

    def _rows_for_number(self, code: int, rows: int | None = None) -> list[int]:
        if not code:
            return []
        pattern = _QWORD.pack(code)
        end = 8 * (self._rows if rows is None else rows)
        found = []
        at = self._numbers.find(pattern, 0, end)
        while at != -1:
            if at % 8 == 0 and self._live(at // 8):
                found.append(at // 8)
            at = self._numbers.find(pattern, at + 1, end)
        return found

    def _rows_for_id(self, lead_id: str, rows: int) -> list[int]:
        lead_id = _canonical_id(lead_id)
        if not _HEX32.fullmatch(lead_id):
            return [row for row, odd in self._odd_ids.items() if odd == lead_id and row < rows and self._live(row)]
        pattern = bytes.fromhex(lead_id)
        found = []
        at = self._ids.find(pattern, 0, 16 * rows)
        while at != -1:
            if at % 16 == 0 and self._live(at // 16):
                found.append(at // 16)
            at = self._ids.find(pattern, at + 1, 16 * rows)
        return found

    def _every_row_of_id(self, lead_id: str, rows: int) -> list[int]:
        """Every row before `rows` with this id, live or not (one `bytes.find` scan per row found)."""
        lead_id = _canonical_id(lead_id)
        if not _HEX32.fullmatch(lead_id):
            return sorted(row for row, odd in list(self._odd_ids.items()) if odd == lead_id and row < rows)
        pattern, end = bytes.fromhex(lead_id), 16 * rows
        found = []
        at = self._ids.find(pattern, 0, end)
        while at != -1:
            if at % 16 == 0:
                found.append(at // 16)
            at = self._ids.find(pattern, at + 1, end)
        return found

    def _every_row_of_uid(self, uid: str, rows: int) -> list[int]:
        """Every row before `rows` with exactly this uid, live or not."""
        if not uid:
            return []
        wanted, pattern, end = uid.encode(), _QWORD.pack(hash(uid)), 8 * rows
        found = []
        at = self._uid_hashes.find(pattern, 0, end)
        while at != -1:
            if at % 8 == 0:
                row = at // 8
                start = self._uid_ends[row - 1] if row else 0
                if self._uids[start : self._uid_ends[row]] == wanted:
                    found.append(row)
            at = self._uid_hashes.find(pattern, at + 1, end)
        return found

    def ids_for_uid_key(self, uid: str) -> list[str]:
        """Ids of the leads whose uid equals `uid` once case and spaces are ignored (the exact uid included), in
        list order. The first call builds the uid-key column from the uid column (one pass, 8 bytes per row); each
        call is then one `bytes.find` scan, each hit confirmed against the row's uid."""
        key = uid_key(uid)
        if not key:
            return []
        with self._lock:
            if self._uid_key_hashes is None:
                self._uid_key_hashes = bytearray(
                    array.array("q", (_uid_key_hash(self._uid_of(row) or "") for row in range(self._rows))).tobytes()
                )
            column, end = self._uid_key_hashes, 8 * self._rows
        pattern = _QWORD.pack(hash(key))
        found: dict[str, None] = {}
        at = column.find(pattern, 0, end)
        while at != -1:
            if at % 8 == 0:
                row = at // 8
                known = self._uid_of(row)
                if known is not None and uid_key(known) == key and self._live(row):
                    found[self.id_of(row)] = None
            at = column.find(pattern, at + 1, end)
        return list(found)

    @property
    def by_uid(self) -> dict[str, str]:
        """Every live uid and its lead's id (see `uid_map`)."""
        return self.uid_map()

    def standings(self) -> ListStandings:
        """Every live lead's rank and status in list order (`ListStandings`): the export's row order, a lead updated
        through this client in its place, one added after them all, a deleted one gone. A rank that is not a whole
        number of at most 6 digits reads as none, as it cannot be a babelforce rank.

        Made from the rank and status columns in a few C-level copies, never a step per lead in Python (the ids and
        uids stay in the index), so a cold command pays the export's parse and little else."""
        with self._lock:
            rows = self._rows
            ranks = self._ranks[:rows]
            wide_ranks = self._wide_ranks
            codes = bytearray(self._status_codes[:rows])
            names = tuple((name.strip() or None) if name else None for name in self._status_names)
            show: dict[int, int] = {}
            dropped = {slot for slot in self._stale if slot < rows}
            for lead_id, latest in self._latest.items():
                place = self._places[lead_id]
                if lead_id not in self._gone and latest != place:
                    show[place] = latest
            dropped.update(self._places[lead_id] for lead_id in self._gone if lead_id in self._places)
        for slot, row in show.items():
            ranks[slot] = ranks[row]
            codes[slot] = codes[row]
        order = sorted(dropped)
        if order:
            ranks, codes = _without(ranks, order), _without(codes, order)
        return ListStandings._of_columns(
            _babelforce_ranks(ranks) if wide_ranks else ranks,
            bytes(codes),
            names,
            _IndexRows(self, rows, show, order),
            has_ranks="rank" in self.columns,
            has_statuses="status" in self.columns,
        )

    def uid_map(self) -> dict[str, str]:
        """Every live uid and its lead's id (for tests and small lists: it builds a dict of the whole list)."""
        found: dict[str, str] = {}
        for row in range(self._rows):
            uid = self._uid_of(row)
            if uid is not None and self._live(row):
                found[uid] = self.id_of(row)
        return found

    def lead(self, row: int, matched: str = "") -> IndexedLead:
        """One row as an IndexedLead."""
        code = int.from_bytes(self._numbers[row * 8 : row * 8 + 8], "little", signed=True)
        number = (("+" if self._plus[row] else "") + str(code)[1:]) if code else None
        rank = self._ranks[row]
        return IndexedLead(
            self.id_of(row),
            self._uid_of(row),
            number,
            None if rank == _NO_RANK else rank,
            self._status_names[self._status_codes[row]],
            matched,
        )

    def search(
        self, text: str, *, number: str | None = None, lead_id: str | None = None, limit: int = 10
    ) -> SearchResult:
        """The leads whose id is `lead_id`, whose number has `number`'s digits, whose uid is `text` exactly (these
        first), or whose uid or data values contain `text` (case-insensitive), in list order after those.

        Cost: a few `bytes.find` scans over the columns plus a step per matching lead (a broad text that matches
        most of a million leads takes a few hundred ms: run it in a worker thread)."""
        rows = self._rows  # rows appended while this runs are not looked at
        exact: dict[int, str] = {}
        if lead_id:
            exact.update((row, "id") for row in self._rows_for_id(lead_id, rows))
        for row in self._rows_for_number(_number_code(number), rows) if number else ():
            exact.setdefault(row, "number")
        uid_row = self._row_for_uid(text, rows)
        if uid_row is not None:
            exact.setdefault(uid_row, "uid")
        needle = text.casefold().encode()
        found = [self.lead(row, how) for row, how in list(exact.items())[:limit]]
        total = len(exact)
        if len(needle) and FIELD_SEP.encode() not in needle and ROW_SEP.encode() not in needle:
            total += self._scan(needle, rows, exact, limit, found)
        return SearchResult(tuple(found), total, min(len(exact), limit))

    def _scan(self, needle: bytes, rows: int, exact: dict[int, str], limit: int, found: list[IndexedLead]) -> int:
        """Count the rows whose text column holds `needle` (rows in `exact` are counted already), filling `found`
        up to `limit` in row order."""
        if not rows:
            return 0
        text, starts, newline = self._text, self._text_starts, ROW_SEP.encode()
        end = starts[rows] if rows < len(starts) else len(text)
        count = 0
        row = 0
        at = text.find(needle, 0, end)
        while at != -1 and (len(found) < limit or exact or self._latest or self._gone):
            row = bisect_right(starts, at, row, rows) - 1
            if row not in exact and self._live(row):
                count += 1
                if len(found) < limit:
                    found.append(self.lead(row, self._matched(row, at)))
            at = text.find(needle, text.find(newline, at) + 1, end)
        while at != -1:  # the rest only counted: every row is live and none was an exact match; "\n" ends a row
            count += 1
            at = text.find(needle, text.find(newline, at) + 1, end)
        return count

    def _matched(self, row: int, at: int) -> str:
        """Which value of the row the match at `at` is in: `uid` or the data variable's name."""
        field = self._text.count(FIELD_SEP.encode(), self._text_starts[row], at)
        if field == 0:
            return "uid"
        shape = self._shapes[row]
        keys = self._shape_keys[shape] if shape < len(self._shape_keys) else ()
        return keys[field - 1] if field - 1 < len(keys) else ""


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where the columns are in an export's rows."""

    id_col: int
    uid_col: int
    number_col: int
    rank_col: int | None
    status_col: int | None
    data_col: int | None
    extra: list[tuple[int, str]]  # (column, variable name) of data variables exported as columns
    strip: bool = False  # the fields have spaces around them: strip every value read

    @property
    def width(self) -> int:
        """The highest column every stored row must have (id, uid and number)."""
        return max(self.id_col, self.uid_col, self.number_col)

    @property
    def full_width(self) -> int:
        """The highest column read at all."""
        optional = (self.rank_col, self.status_col, self.data_col, *(col for col, _ in self.extra))
        return max([self.width, *(col for col in optional if col is not None)])


_Column = TypeVar("_Column", "array.array[int]", bytearray)

_gc_lock = threading.Lock()
_gc_builds = 0
_gc_saved: tuple[int, int, int] = gc.get_threshold()
#: While an index is built, the cyclic collector runs less often: a build allocates millions of short-lived
#: objects (csv rows, parsed data) that reference counting frees, and each collection walks the whole heap of a
#: running bot. About a tenth of a build's CPU (100 000 leads, with the bot's modules loaded).
_BUILD_GC_THRESHOLD = (50_000, 20, 100)


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    global _gc_builds, _gc_saved
    with _gc_lock:
        if _gc_builds == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(*_BUILD_GC_THRESHOLD)
        _gc_builds += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_builds -= 1
            if _gc_builds == 0:
                gc.set_threshold(*_gc_saved)


def _cell(col: int | None) -> Callable[[list[str]], str]:
    """A row's value in column `col`, or "" when the row is shorter."""
    assert col is not None

    def get(row: list[str]) -> str:
        return row[col] if col < len(row) else ""

    return get


def _without(column: _Column, slots: list[int]) -> _Column:
    """A column without the values at `slots` (sorted): its runs between them, joined."""
    kept = column[: slots[0]]
    for start, end in zip(slots, [*slots[1:], len(column)], strict=True):
        kept += column[start + 1 : end]
    return kept


def _has_wide_rank(ranks: array.array[int]) -> bool:
    """Whether a rank column holds a rank of more than 6 digits (not a babelforce rank; none is not one)."""
    if not ranks:
        return False
    if max(ranks) >= _RANK_DIGITS_LIMIT:
        return True
    return min(ranks) <= -_RANK_DIGITS_LIMIT and sum(map((-_RANK_DIGITS_LIMIT).__ge__, ranks)) != ranks.count(_NO_RANK)


def _babelforce_ranks(ranks: array.array[int]) -> array.array[int]:
    """The rank column with every rank of more than 6 digits read as none."""
    return array.array("i", [rank if -_RANK_DIGITS_LIMIT < rank < _RANK_DIGITS_LIMIT else _NO_RANK for rank in ranks])


def _stored_rank(rank: int | None) -> int:
    return rank if rank is not None and -(2**31) < rank < 2**31 else _NO_RANK


def _stripped(values: list[str]) -> list[str]:
    return list(map(str.strip, values))


def _as_is(values: list[str]) -> list[str]:
    return values


def _rank(raw: str) -> int:
    try:
        rank = int(raw)
    except ValueError:
        return _NO_RANK
    return rank if -(2**31) < rank < 2**31 else _NO_RANK


def _lines(text: str) -> Iterator[str]:
    """The lines of `text`, each with its "\n" (csv joins a quoted field's lines back), split on "\n" only, as
    io.StringIO does."""
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        end = size if end < 0 else end + 1
        yield text[start:end]
        start = end


def _lines_of_chunks(chunks: Iterable[bytes], decode: Callable[[bytes], str]) -> Iterator[str]:
    """The lines of a byte stream in an ASCII-compatible encoding, decoded a run of whole lines at a time. Lines end
    at "\n", "\r\n" or "\r", each kept (io.StringIO with newline=""): csv ends an unquoted record at each of them
    too, and joins a quoted field's lines back."""
    rest = b""
    for chunk in chunks:
        data = rest + chunk if rest else chunk
        cut = data.rfind(b"\n") + 1
        if not cut:
            rest = data
            continue
        rest = data[cut:]
        yield from io.StringIO(decode(data[:cut]), newline="")
    if rest:
        yield from io.StringIO(decode(rest), newline="")


def _wide_lines(chunks: Iterable[bytes], decode: Callable[[bytes], str]) -> Iterator[str]:
    """The lines of a byte stream in UTF-16, where a "\n" byte may be half of another character: decoded whole."""
    yield from io.StringIO(decode(b"".join(chunks)), newline="")


class IndexCache:
    """The most recently used lists' indexes (LRU), bounded by lists and by leads in all, so memory stays bounded
    however many lists are used; the newest index is always kept, however big."""

    def __init__(self, max_lists: int = 64, max_leads: int = 2_000_000) -> None:
        self._max_lists = max_lists
        self._max_leads = max_leads
        self._indexes: OrderedDict[str, LeadIndex] = OrderedDict()

    def get(self, list_id: str) -> LeadIndex | None:
        index = self._indexes.get(list_id)
        if index is not None:
            self._indexes.move_to_end(list_id)
        return index

    def put(self, list_id: str, index: LeadIndex) -> None:
        self._indexes[list_id] = index
        self._indexes.move_to_end(list_id)
        while len(self._indexes) > 1 and (
            len(self._indexes) > self._max_lists or sum(map(len, self._indexes.values())) > self._max_leads
        ):
            self._indexes.popitem(last=False)

    def discard(self, list_id: str) -> None:
        self._indexes.pop(list_id, None)


async def inspect_export(client: BabelforceClient, list_id: str) -> ExportShape:
    """The shape of a list's CSV export, fetched once and read to the end (`rows` counted), for `leadbot doctor`.

    Never raises for an export lookups cannot use: its `problem` says why (lookups then page the JSON API). Errors
    that would stop a lookup too (list not found, credentials, babelforce down) raise the usual typed errors."""
    return await client.inspect_export(list_id)
