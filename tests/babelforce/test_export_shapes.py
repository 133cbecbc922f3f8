"""Lookups that read the CSV export babelforce may really send: every delimiter, BOM and charset, header names with
aliases, spaces around fields (pure), against the sandbox in every `--csv-dialect` × `--csv-headers`, and the
fallback to paging the JSON API when the export cannot be used (logged once per list)."""

from __future__ import annotations

import codecs
import csv
import io
import logging
from collections.abc import Iterator

import httpx
import pytest

from babelforce import BabelforceClient, ServerError
from babelforce.lookup import (
    ExportShape,
    ExportUnusable,
    LeadIndex,
    decode_export,
    inspect_export,
    sniff_export,
)
from sandbox import SandboxServer
from sandbox.seed import DEMO_LIST_ID
from tests.support import SANDBOX_CLIENT, SandboxControl

A, B, C = "a" * 32, "b" * 32, "c" * 32
ZOE_NUMBER = "+4915100000777"
PAGING_ROUTE = "GET /api/v2/outbound/leads"
EXPORT_ROUTE = "GET /api/v2/outbound/lists/{id}/leads"
EXPORT_PATH = r"/lists/[0-9a-f]+/leads$"


def write(rows: list[tuple[str, ...]], *, delimiter: str = ",", line_end: str = "\r\n") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=line_end).writerows(rows)
    return out.getvalue()


def in_chunks(data: bytes, size: int) -> Iterator[bytes]:
    return (data[at : at + size] for at in range(0, len(data), size))


# ---------------------------------------------------------------------- sniffing (pure)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_the_one_that_finds_the_columns(delimiter: str) -> None:
    text = write(
        [("id", "uid", "number", "data"), (A, "lead;1,x", "+4915100000001", '{"a":"b,c;d"}')], delimiter=delimiter
    )
    shape = sniff_export(text.encode())
    assert (shape.delimiter, shape.headers, shape.problem) == (delimiter, ("id", "uid", "number", "data"), None)
    assert LeadIndex.from_csv(text.encode(), built_at=0).uid_map() == {"lead;1,x": A}


def test_an_excel_export_with_bom_sep_line_crlf_and_a_latin1_body() -> None:
    body = codecs.BOM_UTF8 + b"sep=;\r\nLead ID;UID;Phone;Data\r\n" + f"{A};Zoë;+4915100000001;x\r\n".encode("latin-1")
    shape = sniff_export(body, "text/csv; charset=ISO-8859-1")
    assert (shape.bom, shape.excel_sep_line, shape.delimiter, shape.line_ending) == (True, True, ";", "\r\n")
    assert shape.columns == {"id": "Lead ID", "uid": "UID", "number": "Phone", "data": "Data"}
    index = LeadIndex.from_export(in_chunks(body, 7), built_at=0, content_type="text/csv; charset=ISO-8859-1")
    assert index.uid_map() == {"Zoë": A}
    assert index.shape is not None and (index.shape.rows, index.shape.encoding) == (1, "cp1252")


@pytest.mark.parametrize(
    ("body", "content_type", "encoding"),
    [
        (b"id,uid,number\n", None, "utf-8"),
        ("id,uid,number\nx,Zoë,1\n".encode(), None, "utf-8"),
        ("id,uid,number\nx,Zoë,1\n".encode("latin-1"), None, "cp1252"),  # not UTF-8: the Windows code page
        ("id,uid,number\nx,Zoë,1\n".encode("latin-1"), "text/csv; charset=utf-8", "cp1252"),  # a wrong charset
        ("id,uid,number\nx,Zoë,1\n".encode("latin-1"), 'text/csv; charset="ISO-8859-1"', "iso8859-1"),
        ("id,uid,number\nx,Zoë,1\n".encode("latin-1"), "text/csv; charset=no-such-codec", "cp1252"),
        (codecs.BOM_UTF16_LE + "id\tuid\tnumber\n".encode("utf-16-le"), None, "utf-16-le"),  # Excel's Unicode text
    ],
)
def test_the_charset_is_the_boms_else_the_content_types_else_utf8_falling_back(
    body: bytes, content_type: str | None, encoding: str
) -> None:
    assert sniff_export(body, content_type).encoding == encoding


def test_export_leads_csv_text_is_decoded_as_lookups_decode_it() -> None:
    body = codecs.BOM_UTF8 + "sep=;\r\nid;uid\r\nx;Zoë\r\n".encode("latin-1")
    assert decode_export(body, "text/csv; charset=ISO-8859-1") == "sep=;\r\nid;uid\r\nx;Zoë\r\n"
    assert decode_export("id;uid\nx;Zoë".encode("cp1252"), "text/csv; charset=windows-1252") == "id;uid\nx;Zoë"


def test_the_utf8_fallback_switches_where_the_first_bytes_are_not_utf8_in_any_chunking() -> None:
    rows = [(f"{n:032x}", f"lead-{n}", f"+49151{n:08d}") for n in range(300)] + [(C, "Zoë €", "+4915100000999")]
    body = write([("id", "uid", "number"), *rows]).encode("cp1252")
    for size in (1, 5, 64, 4096, len(body)):
        index = LeadIndex.from_chunks(in_chunks(body, size), built_at=0)
        assert index.id_for_uid("Zoë €") == C and index.id_for_uid("lead-299") == f"{299:032x}"
        assert index.shape is not None and index.shape.encoding == "cp1252"


def test_a_utf16_export_is_read_whole() -> None:
    body = codecs.BOM_UTF16_LE + write([("id", "uid", "number"), (A, "Zoë", "+4915100000001")], delimiter="\t").encode(
        "utf-16-le"
    )
    index = LeadIndex.from_export(in_chunks(body, 3), built_at=0)
    assert index.uid_map() == {"Zoë": A}


def test_header_names_are_read_without_case_or_separators_and_with_aliases() -> None:
    shape = sniff_export(b"LEAD_ID;Lead-UID;phone number;Dial Status;RANK\n")
    assert shape.columns == {
        "id": "LEAD_ID",
        "uid": "Lead-UID",
        "number": "phone number",
        "rank": "RANK",
        "status": "Dial Status",
    }


def test_an_alias_next_to_the_fields_own_column_stays_a_data_variable() -> None:
    text = write([("externalId", "id", "uid", "phone", "number"), ("CRM-7", A, "lead-1", "+491", "+4915100000001")])
    index = LeadIndex.from_csv(text, built_at=0)
    assert index.shape is not None and index.shape.columns == {"id": "id", "uid": "uid", "number": "number"}
    assert index.uid_map() == {"lead-1": A}
    assert index.search("crm-7").leads[0].matched == "externalId"


@pytest.mark.parametrize(
    ("body", "content_type", "problem"),
    [
        (b"", None, "The export is empty: not even a header line."),
        (b"\r\n", None, "The export is empty: not even a header line."),
        (
            b"<!DOCTYPE html><html><body>Sign in</body></html>",
            "text/csv",
            "The export is an HTML or XML page, not CSV.",
        ),
        (b'{"items": [], "success": true}', None, "The export is JSON, not CSV."),
        (b"leadId;name\n1;x\n", None, "The export has no uid or number column (its headers: leadId, name)."),
        (b"ref,uid,phone\n", None, "The export has no id column (its headers: ref, uid, phone)."),
        (b"a,b,c\n", None, "The export has no id, uid or number column (its headers: a, b, c)."),
        (  # no header line: the message must not quote the lead's number (nor its id) into a log
            f"{A};lead-1;+49 151 0000 0001\n".encode(),
            None,
            "The export has no header line: its first line holds a lead's values, not column names.",
        ),
    ],
)
def test_an_export_lookups_cannot_use_says_why_in_one_sentence(
    body: bytes, content_type: str | None, problem: str
) -> None:
    assert sniff_export(body, content_type).problem == problem
    with pytest.raises(ExportUnusable) as caught:
        LeadIndex.from_export([body], built_at=0, content_type=content_type)
    assert caught.value.shape.problem == problem
    assert isinstance(caught.value, ValueError)  # one thing for callers to catch, as before
    assert "0001" not in repr(caught.value.shape)  # a headerless export's first line is kept nowhere


def test_spaces_around_fields_are_stripped() -> None:
    text = f'id , uid, number, status, data\r\n{A} , lead-1 ,  +4915100000001 , pending , {{"name": "Ann"}} \r\n'
    text += f'{B}, "lead 2", +4915100000002, callback, {{}}\r\n'
    index = LeadIndex.from_csv(text, built_at=0)
    assert index.shape is not None and index.shape.padded
    assert index.uid_map() == {"lead-1": A, "lead 2": B}
    assert index.id_for_uid(" lead-1 ") == A  # a uid with spaces, as the export's padding would have hidden it
    assert [(lead.uid, lead.status) for lead in index.standings().leads] == [
        ("lead-1", "pending"),
        ("lead 2", "callback"),
    ]
    assert index.search("ann").total == 1
    assert index.ids_for_number("+4915100000002") == [B]


def test_an_export_without_padding_keeps_a_uids_own_spaces() -> None:
    index = LeadIndex.from_csv(write([("id", "uid", "number"), (A, " lead-1", "+4915100000001")]), built_at=0)
    assert index.uid_map() == {" lead-1": A}


def test_the_shape_counts_the_rows_and_keeps_the_first_leads() -> None:
    rows = [(f"{n:032x}", f"lead-{n}", f"+49151{n:08d}") for n in range(8)]
    shape = LeadIndex.from_csv(write([("id", "uid", "number"), *rows]).encode(), built_at=0).shape
    assert isinstance(shape, ExportShape) and shape.usable
    assert shape.rows == 8
    assert [lead.uid for lead in shape.first_leads] == ["lead-0", "lead-1", "lead-2", "lead-3", "lead-4"]
    assert shape.describe() == "delimiter comma, encoding utf-8, id=id, uid=uid, number=number"


# ---------------------------------------------------------------------- against the sandbox, every shape


@pytest.fixture(scope="module")
def shapes_sandbox() -> Iterator[SandboxServer]:
    """One demo sandbox for every shape (each test sets the shape it reads): Spring leads plus a lead whose uid and
    data are not ASCII, so the charset matters."""
    with SandboxServer(seed="demo") as server:
        server.state.add_lead(DEMO_LIST_ID, "zoë-1", ZOE_NUMBER, 5, {"name": "Zoë Müller"})
        yield server


EXPECTED = {
    # dialect: (delimiter, bom, Excel sep line, encodings the non-ASCII lead may be read in)
    "comma": (",", False, False, {"utf-8"}),
    "semicolon": (";", False, False, {"utf-8"}),
    "tab": ("\t", False, False, {"utf-8"}),
    "excel": (";", True, True, {"cp1252"}),
}


@pytest.mark.anyio
@pytest.mark.parametrize("headers", ["babelforce", "alias"])
@pytest.mark.parametrize("dialect", ["comma", "semicolon", "tab", "excel"])
async def test_lookups_read_every_export_shape_the_sandbox_serves(
    shapes_sandbox: SandboxServer, dialect: str, headers: str
) -> None:
    shapes_sandbox.state.set_export_shape(dialect, headers)
    async with BabelforceClient(base_url=shapes_sandbox.base_url, credentials=SANDBOX_CLIENT) as client:
        by_uid = await client.find_lead_by_uid(DEMO_LIST_ID, "zoë-1")
        assert by_uid.data == {"name": "Zoë Müller"}
        assert [lead.uid for lead in await client.find_leads_by_number(DEMO_LIST_ID, "+49 151 00000777")] == ["zoë-1"]
        assert (await client.find_lead(DEMO_LIST_ID, "lead-42")).rank == 42
        index = await client.lead_index(DEMO_LIST_ID)
        assert index.source == "export"
        assert [lead.uid for lead in index.search("müller").leads] == ["zoë-1"]
        assert {standing.uid: standing.rank for standing in index.standings().leads}["lead-7"] == 7

        shape = await inspect_export(client, DEMO_LIST_ID)
    delimiter, bom, sep_line, encodings = EXPECTED[dialect]
    assert (shape.delimiter, shape.bom, shape.excel_sep_line, shape.problem) == (delimiter, bom, sep_line, None)
    assert shape.encoding in encodings
    assert shape.rows == 51
    assert shape.columns["uid"] == ("leadUid" if headers == "alias" else "uid")
    assert shape.columns["number"] == ("phone" if headers == "alias" else "number")
    assert shape.first_leads[0].uid == "lead-1"


# ---------------------------------------------------------------------- when the export cannot be used


NOT_USABLE = {
    "refused with 403": (
        {"status": 403, "body": {"success": False, "message": "Exports are not enabled"}},
        "babelforce answered the export with HTTP 403: Exports are not enabled.",
    ),
    "406 to Accept: text/csv": ({"status": 406}, "babelforce answered the export with HTTP 406: Simulated 406."),
    "a sign-in page": (
        {"status": 200, "body": "<html><body>Please sign in</body></html>", "content_type": "text/html"},
        "babelforce answered the export with a page of type text/html, not CSV.",
    ),
    "an HTML page called CSV": (
        {"status": 200, "body": "<!doctype html><p>Maintenance</p>", "content_type": "text/csv"},
        "The export is an HTML or XML page, not CSV.",
    ),
    "success false": (
        {"status": 200, "body": {"success": False, "message": "List is being imported"}},
        "babelforce refused the export: List is being imported.",
    ),
    "JSON instead of CSV": (
        {"status": 200, "body": {"success": True, "items": []}},
        "babelforce answered the export with JSON (application/json), not CSV.",
    ),
    "no id column": (
        {"status": 200, "body": "ref;uid;phone\r\n1;lead-7;+4915100000007\r\n", "content_type": "text/csv"},
        "The export has no id column (its headers: ref, uid, phone).",
    ),
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(NOT_USABLE))
async def test_an_export_that_cannot_be_used_falls_back_to_paging_and_says_so_once(
    sandbox: SandboxServer, make_client, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    rule, problem = NOT_USABLE[case]
    control = SandboxControl(sandbox.base_url)
    control.faults({**rule, "method": "GET", "path": EXPORT_PATH, "times": None})
    client: BabelforceClient = make_client()
    caplog.set_level(logging.INFO, logger="babelforce.client")

    shape = await inspect_export(client, DEMO_LIST_ID)
    assert (shape.problem, shape.rows) == (problem, 0)
    if case == "no id column":  # read as far as its header line
        assert (shape.delimiter, shape.encoding, shape.headers) == (";", "utf-8", ("ref", "uid", "phone"))
    elif case.startswith(("refused", "406")):  # nothing read at all
        assert (shape.delimiter, shape.encoding, shape.headers) == ("", "", ())
    control.reset_stats()
    assert (await client.find_lead_by_uid(DEMO_LIST_ID, "lead-7")).rank == 7
    assert [lead.uid for lead in await client.find_leads_by_number(DEMO_LIST_ID, "+4915100000008")] == ["lead-8"]
    assert control.count(EXPORT_ROUTE) == 1 and control.count(PAGING_ROUTE) == 1  # 50 leads: one page
    index = await client.lead_index(DEMO_LIST_ID, max_age=0)  # rebuilt: the export is tried again, paged again
    assert index.source == "paging" and index.shape is not None and index.shape.problem == problem
    assert index.search("hannah").total > 0  # /lead find works on the paged index too (data came with the leads)

    said = [record for record in caplog.records if "lookups in list" in record.getMessage()]
    assert len(said) == 1, [record.getMessage() for record in said]
    assert said[0].levelno == logging.WARNING
    assert said[0].getMessage() == (
        f"lookups in list {DEMO_LIST_ID} page GET /api/v2/outbound/leads?listId=… instead of reading its CSV export: "
        f"{problem}"
    )
    control.close()


@pytest.mark.anyio
async def test_the_source_is_logged_again_only_when_it_changes(
    sandbox: SandboxServer, client: BabelforceClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="babelforce.client")
    control = SandboxControl(sandbox.base_url)
    await client.lead_index(DEMO_LIST_ID)
    await client.lead_index(DEMO_LIST_ID, max_age=0)
    control.faults({"status": 403, "method": "GET", "path": EXPORT_PATH})
    await client.lead_index(DEMO_LIST_ID, max_age=0)
    said = [record.getMessage() for record in caplog.records if "lookups in list" in record.getMessage()]
    assert said == [
        f"lookups in list {DEMO_LIST_ID} read its CSV export (delimiter comma, encoding utf-8, id=id, uid=uid, "
        "number=number, rank=rank, status=status, data=data)",
        f"lookups in list {DEMO_LIST_ID} page GET /api/v2/outbound/leads?listId=… instead of reading its CSV export: "
        "babelforce answered the export with HTTP 403: Simulated 403.",
    ]
    control.close()


@pytest.mark.anyio
async def test_babelforce_in_trouble_is_an_error_not_a_reason_to_page(sandbox: SandboxServer, client) -> None:
    control = SandboxControl(sandbox.base_url)
    control.faults({"status": 500, "method": "GET", "path": EXPORT_PATH})
    with pytest.raises(ServerError):
        await client.find_lead_by_uid(DEMO_LIST_ID, "lead-7")
    assert control.count(PAGING_ROUTE) == 0
    control.close()


@pytest.mark.anyio
async def test_the_export_is_asked_for_as_text_csv(make_client) -> None:
    sent: list[str] = []

    async def remember(request: httpx.Request) -> None:  # an httpx event hook: what the client really sent
        if request.url.params.get("format") == "csv":
            sent.append(request.headers["Accept"])

    async with httpx.AsyncClient(event_hooks={"request": [remember]}) as http:
        await make_client(http_client=http).lead_index(DEMO_LIST_ID)
    assert sent == ["text/csv"]


@pytest.mark.anyio
async def test_iter_leads_pages_the_documented_endpoint(sandbox: SandboxServer, client: BabelforceClient) -> None:
    control = SandboxControl(sandbox.base_url)
    control.reset_stats()
    uids = [lead.uid async for lead in client.iter_leads(DEMO_LIST_ID, page_size=7)]
    assert uids == [f"lead-{n}" for n in range(1, 51)]
    assert (control.count(PAGING_ROUTE), control.count(EXPORT_ROUTE)) == (8, 0)  # 50 leads, 7 a page
    control.close()
