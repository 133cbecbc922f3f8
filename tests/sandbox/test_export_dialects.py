"""The CSV export in each shape `--csv-dialect` / `--csv-headers` can give it (babelforce's spec says only
`text/csv`), set in process, through PUT /sandbox/export or on the command line; and fault rules that answer a text
of their own with any Content-Type."""

from __future__ import annotations

import codecs
from collections.abc import Iterator

import httpx
import pytest

from bot.cli import SANDBOX_CSV_DIALECTS, SANDBOX_CSV_HEADERS, build_parser
from sandbox import SandboxServer
from sandbox.seed import DEMO_LIST_ID
from sandbox.state import CSV_DIALECTS, CSV_HEADER_STYLES
from tests.support import SSL_CONTEXT, fetch_token

EXPORT = f"/api/v2/outbound/lists/{DEMO_LIST_ID}/leads"


@pytest.fixture(scope="module")
def zoe_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(seed="demo") as server:
        server.state.add_lead(DEMO_LIST_ID, "zoë-1", "+4915100000777", 5, {"name": "Zoë Müller"})
        yield server


def api_client(server: SandboxServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {fetch_token(server.base_url)}"},
        verify=SSL_CONTEXT,
    )


def export(api: httpx.Client) -> httpx.Response:
    response = api.get(EXPORT, params={"format": "csv"})
    assert response.status_code == 200
    return response


@pytest.fixture
def zoe_api(zoe_sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with api_client(zoe_sandbox) as client:
        yield client
    zoe_sandbox.state.set_export_shape("comma", "babelforce")


def test_the_default_is_what_the_sandbox_always_sent(zoe_api: httpx.Client) -> None:
    response = export(zoe_api)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(b"id,uid,number,rank,status,callCount,dateCreated,lastUpdated,data\r\n")
    assert "zoë-1,+4915100000777,5".encode() in response.content
    assert '"{""name"":""Zoë Müller""}"'.encode() in response.content


@pytest.mark.parametrize(("dialect", "delimiter"), [("semicolon", b";"), ("tab", b"\t")])
def test_semicolon_and_tab_exports_are_utf8(
    zoe_sandbox: SandboxServer, zoe_api: httpx.Client, dialect: str, delimiter: bytes
) -> None:
    zoe_sandbox.state.set_export_shape(dialect)
    response = export(zoe_api)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(delimiter.join([b"id", b"uid", b"number", b"rank"]))
    assert delimiter.join(["zoë-1".encode(), b"+4915100000777", b"5"]) in response.content


def test_the_excel_export_has_a_bom_a_sep_line_crlf_and_an_iso_8859_1_body(
    zoe_sandbox: SandboxServer, zoe_api: httpx.Client
) -> None:
    zoe_sandbox.state.set_export_shape("excel", "alias")
    response = export(zoe_api)
    assert response.headers["Content-Type"] == "text/csv; charset=ISO-8859-1"
    assert response.content.startswith(
        codecs.BOM_UTF8 + b"sep=;\r\nleadId;leadUid;phone;Rank;Status;call_count;date_created;last_updated;Data\r\n"
    )
    assert b"zo\xeb-1;+4915100000777;5;pending" in response.content  # ë is one byte: ISO-8859-1
    assert b"\r\n" in response.content[200:] and b"\n" not in response.content.replace(b"\r\n", b"")


def test_the_shape_is_read_and_changed_through_put_sandbox_export(zoe_sandbox: SandboxServer) -> None:
    with httpx.Client(base_url=zoe_sandbox.base_url) as raw:
        assert raw.get("/sandbox/export").json() == {"success": True, "dialect": "comma", "headers": "babelforce"}
        changed = raw.put("/sandbox/export", json={"headers": "alias"})
        assert changed.json() == {"success": True, "dialect": "comma", "headers": "alias"}
        refused = raw.put("/sandbox/export", json={"dialect": "pipe"})
        assert refused.status_code == 400
        assert refused.json()["message"] == "dialect must be one of comma, semicolon, tab, excel."
        assert raw.put("/sandbox/export", json={"sep": ";"}).status_code == 400
        assert raw.put("/sandbox/export", json={"dialect": "comma", "headers": "babelforce"}).status_code == 200
    with pytest.raises(ValueError, match="headers must be one of babelforce, alias"):
        SandboxServer(seed="empty", csv_headers="crm")


def test_the_command_line_offers_the_sandboxs_shapes() -> None:
    assert (SANDBOX_CSV_DIALECTS, SANDBOX_CSV_HEADERS) == (CSV_DIALECTS, CSV_HEADER_STYLES)
    args = build_parser().parse_args(["sandbox"])
    assert (args.csv_dialect, args.csv_headers) == ("comma", "babelforce")
    args = build_parser().parse_args(["sandbox", "--csv-dialect", "excel", "--csv-headers", "alias"])
    assert (args.csv_dialect, args.csv_headers) == ("excel", "alias")


def test_a_fault_can_answer_a_text_of_its_own_with_any_content_type(zoe_sandbox: SandboxServer) -> None:
    with httpx.Client(base_url=zoe_sandbox.base_url) as raw, api_client(zoe_sandbox) as api:
        rule = {"status": 200, "body": "<html>Sign in</html>", "content_type": "text/html", "path": "/leads$"}
        assert raw.post("/sandbox/faults", json=rule).status_code == 200
        page = export(api)
        assert (page.headers["Content-Type"], page.text) == ("text/html", "<html>Sign in</html>")
        refused = raw.post("/sandbox/faults", json={"status": 200, "body": {"a": 1}, "content_type": "text/csv"})
        assert refused.status_code == 400
        assert refused.json()["message"] == "content_type needs a body that is a string (the text answered as is)."
