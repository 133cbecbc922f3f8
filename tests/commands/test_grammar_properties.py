"""Properties of the /lead parser: it never raises, always answers with a known result, and reads back any
command written with every token quoted (what a careful user, or a generated example, would type)."""

from __future__ import annotations

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from babelforce.models import RANK_MAX, RANK_MIN
from commands import registry
from commands.add import AddLead
from commands.fields import READ_ONLY_FIELDS
from commands.grammar import Help, Invalid, OpenModal, command_text, parse
from commands.history import LeadHistory
from commands.rank import RankLead
from commands.set import SetLead
from commands.show import ShowLead
from tests.subcommands import USAGE

SETTINGS = settings(deadline=None)
REGIONS = st.sampled_from([None, "DE", "us", "GB", "", "XX", "001"])

# Pieces that exercise the grammar's corners: subcommands, quotes (straight, curly, escaped, single), '=' alone
# and spaced, null, field names (writable and read-only), Slack's escapes, phone numbers and ranks at and beyond
# their limits, exotic whitespace and digits.
PIECES = st.sampled_from(
    [
        "add", "rank", "show", "set", "help", "?", "/lead", "ADD", "Set", "undo", "#", "#12",
        '"', "“", "”", "„", "″", "\\", '\\"', "\\\\", "'", "=", "==", '"="', "null", '"null"', "Null",
        "uid=", "rank=", "number=", '"uid"=', "x=", "=x", '""', " = ", "= ", " =", " =x", "x= ",
        "status=", "STATUS=", "callCount=", "list_id=", '"status"=', "id", "status", "city", "address=martin",
        "'", "‘", "’", "'Spring", "leads'", "'x", "y'", "=''", "help ", " ?",
        "&amp;", "&lt;", "&gt;", "&", "&quot;",
        " ", "  ", "\u00a0", "\u3000", "\n", "\t", "\u2028", "\x00",
        "Spring leads", '"Spring leads"', "lead-40", "O'Brien", "uuid_100",
        "+49", "0151", "00000040", "4916098119998", "+4915100000040", "0049", "(0)", "-", ".",
        "-32768", "32767", "32768", "1.5", "1e3", "١٢", "１２", "9" * 30,
    ]
)  # fmt: skip
COMMANDISH = st.lists(st.one_of(PIECES, st.text(max_size=6)), max_size=14).map("".join)


def check_result(result: object) -> None:
    # a registered subcommand's own command (any of them, including ones added later), or help / a form / a refusal
    assert isinstance(result, Help | OpenModal | Invalid) or registry.find(registry.of(result).name) is not None
    if isinstance(result, Invalid):
        assert result.message and result.usage
        assert result.message.endswith(".")
        assert isinstance(result.field, str | None) and isinstance(result.subcommand, str | None)


@SETTINGS
@given(st.text(), REGIONS)
def test_parse_never_raises_on_any_text(text: str, region: str | None) -> None:
    check_result(parse(text, default_region=region))


@SETTINGS
@given(COMMANDISH, REGIONS)
def test_parse_never_raises_on_command_like_text(text: str, region: str | None) -> None:
    check_result(parse(text, default_region=region))


@SETTINGS
@given(st.sampled_from(["add", "rank", "show", "set", "history", "undo", "help"]), COMMANDISH, REGIONS)
def test_parse_never_raises_after_a_subcommand(subcommand: str, rest: str, region: str | None) -> None:
    check_result(parse(f"{subcommand} {rest}", default_region=region))


# A complete command up to where key=value changes go; any of them reads those changes the same way.
DATA_PREFIXES = st.sampled_from(
    [
        'set "Spring leads" lead-12',
        "set A l1",
        "set A l1 rank=5",
        'add "Spring leads" u1 +4916098119998 5',
        "add A u1 +49 151 000 000 40 -3",
        "add A u1 4915100000040 5 a=b",
    ]
)
WORDS = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)


def spellings(name: str) -> st.SearchStrategy[str]:
    """The read-only field as typed: any case, as the lists spell it."""
    return st.sampled_from([name, name.upper(), name.title(), name.capitalize()])


@SETTINGS
@given(st.data(), DATA_PREFIXES, st.sampled_from(sorted(READ_ONLY_FIELDS)), WORDS)
def test_unquoted_read_only_keys_are_refused_and_quoted_ones_are_data(
    data: st.DataObject, prefix: str, name: str, value: str
) -> None:
    key = data.draw(spellings(name))
    refused = parse(f"{prefix} {key}={value}")
    assert isinstance(refused, Invalid), refused
    assert refused.field == "data"
    assert f'"{key}"={value}.' in refused.message
    assert refused.usage == USAGE[prefix.split()[0]]

    stored = parse(f'{prefix} "{key}"={value}')
    assert isinstance(stored, AddLead | SetLead), stored
    assert stored.data[key] == (None if value == "null" and isinstance(stored, SetLead) else value)


@SETTINGS
@given(
    DATA_PREFIXES,
    WORDS.filter(lambda word: word not in READ_ONLY_FIELDS),
    WORDS,
    st.sampled_from(["{k} = {v}", "{k}= {v}", "{k} ={v}"]),
)
def test_spaces_around_equals_name_the_change_to_write(prefix: str, key: str, value: str, spacing: str) -> None:
    result = parse(f"{prefix} {spacing.format(k=key, v=value)}")
    assert isinstance(result, Invalid), result
    assert result.message == f"no spaces around '=': write {key}={value}."
    assert parse(f"{prefix} {key}={value}") != result  # and the suggestion is not refused the same way


@SETTINGS
@given(
    st.sampled_from(["rank {q} l1 5", "show {q} l1", "add {q} u1 +4916098119998 5", "set {q} l1 rank=1"]),
    st.lists(WORDS, min_size=2, max_size=3).map(" ".join),  # at most 38 characters: quoted whole, not shortened
    st.sampled_from([("'", "'"), ("‘", "’")]),
)
def test_names_in_single_quotes_are_told_to_use_double_quotes(
    template: str, name: str, quotes: tuple[str, str]
) -> None:
    opening, closing = quotes
    result = parse(template.format(q=f"{opening}{name}{closing}"))
    assert isinstance(result, Invalid), result
    assert f'use double quotes, not single: "{name}".' in result.message.lower()
    assert not isinstance(parse(template.format(q=f'"{name}"')), Invalid)  # and the suggestion is read


@SETTINGS
@given(st.sampled_from(["add", "rank", "show", "set"]), st.sampled_from(["help", "HELP", "Help", "?"]))
def test_help_after_a_subcommand_is_help_on_it(subcommand: str, word: str) -> None:
    assert parse(f"{subcommand} {word}") == Help(subcommand)
    assert parse(f"{subcommand.upper()}  {word} ") == Help(subcommand)


# ---- round trip -------------------------------------------------------------------------------------------------

# No control characters or surrogates, and none of the curly double quotes: Slack turns typed quotes into those,
# so the grammar reads them as quotes and they cannot appear literally in a value.
_LITERAL = st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="“”„″")
_ONE_LINE = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="“”„″")
REFS = st.text(_LITERAL, min_size=1, max_size=20).map(str.strip).filter(bool)  # list and lead refs are stripped
UIDS = st.text(_ONE_LINE, min_size=1, max_size=30).map(str.strip).filter(bool)
KEYS = st.text(_ONE_LINE, min_size=1, max_size=15).map(str.strip).filter(bool)
VALUES = st.text(_LITERAL, max_size=20)  # values are kept exactly, spaces and all
RANKS = st.integers(RANK_MIN, RANK_MAX)
NUMBERS = st.sampled_from(
    sorted(
        {"+4916098119998", "+4915100000040"}
        | {
            phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            for region in ("DE", "US", "GB", "FR", "IT", "BR", "IN", "JP", "AU", "ZA")
            if (example := phonenumbers.example_number(region)) is not None
        }
    )
)
SUBCOMMAND_SPELLINGS = {name: st.sampled_from([name, name.upper(), name.title()]) for name in ("add", "rank", "set")}


def quote(text: str) -> str:
    """One token in double quotes, escaping exactly what the grammar unescapes."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def slack_escape(text: str) -> str:
    """What Slack does to command text before sending it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def number_spellings(number: str) -> st.SearchStrategy[str]:
    """Ways to write one E.164 number that must all read back as it."""
    parsed = phonenumbers.parse(number)
    return st.sampled_from(
        [
            number,
            "00" + number[1:],
            number[1:],
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        ]
    )


def pair(key: str, value: str | None) -> str:
    return f"{quote(key)}={'null' if value is None else quote(value)}"


@SETTINGS
@given(st.data(), REFS, UIDS, NUMBERS, RANKS, st.dictionaries(KEYS, VALUES, max_size=4))
def test_add_round_trip(
    data: st.DataObject, list_ref: str, uid: str, number: str, rank: int, variables: dict[str, str]
) -> None:
    expected = AddLead(list_ref, uid, number, rank, variables)
    words = [
        data.draw(SUBCOMMAND_SPELLINGS["add"]),
        quote(list_ref),
        quote(uid),
        quote(data.draw(number_spellings(number))),
        data.draw(st.sampled_from([str(rank), quote(str(rank))])),
        *(pair(key, value) for key, value in variables.items()),
    ]
    assert parse(slack_escape(" ".join(words))) == expected


@SETTINGS
@given(st.data(), REFS, REFS, RANKS)
def test_rank_round_trip(data: st.DataObject, list_ref: str, lead_ref: str, rank: int) -> None:
    text = " ".join([data.draw(SUBCOMMAND_SPELLINGS["rank"]), quote(list_ref), quote(lead_ref), quote(str(rank))])
    assert parse(slack_escape(text)) == RankLead(list_ref, lead_ref, rank)


@SETTINGS
@given(
    st.data(),
    REFS,
    REFS,
    st.none() | UIDS,
    st.none() | NUMBERS,
    st.none() | RANKS,
    st.dictionaries(KEYS, st.none() | VALUES, max_size=4),
)
def test_set_round_trip(
    data: st.DataObject,
    list_ref: str,
    lead_ref: str,
    uid: str | None,
    number: str | None,
    rank: int | None,
    variables: dict[str, str | None],
) -> None:
    changes = [pair(key, value) for key, value in variables.items()]
    if uid is not None:
        changes.append(f"{data.draw(st.sampled_from(['uid', 'UID']))}={quote(uid)}")
    if number is not None:
        changes.append(f"number={quote(data.draw(number_spellings(number)))}")
    if rank is not None:
        changes.append(f"rank={quote(str(rank))}")
    if not changes:
        changes.append(pair("note", ""))
        variables = {"note": ""}
    changes = data.draw(st.permutations(changes))
    text = " ".join([data.draw(SUBCOMMAND_SPELLINGS["set"]), quote(list_ref), quote(lead_ref), *changes])
    expected = SetLead(list_ref, lead_ref, uid=uid, number=number, rank=rank, data=variables)
    assert parse(slack_escape(text)) == expected


# ---------------------------------------------------------------------- command_text: the audit trail's record


@SETTINGS
@given(REFS, UIDS, NUMBERS, RANKS, st.dictionaries(KEYS, VALUES, max_size=4))
def test_command_text_of_an_add_parses_back_to_it(
    list_ref: str, uid: str, number: str, rank: int, variables: dict[str, str]
) -> None:
    command = AddLead(list_ref, uid, number, rank, variables)
    assert parse(slack_escape(command_text(command))) == command


@SETTINGS
@given(
    REFS,
    REFS,
    st.none() | UIDS,
    st.none() | NUMBERS,
    st.none() | RANKS,
    st.dictionaries(KEYS, st.none() | VALUES, min_size=1, max_size=4),
)
def test_command_text_of_a_set_parses_back_to_it(
    list_ref: str,
    lead_ref: str,
    uid: str | None,
    number: str | None,
    rank: int | None,
    variables: dict[str, str | None],
) -> None:
    command = SetLead(list_ref, lead_ref, uid=uid, number=number, rank=rank, data=variables)
    assert parse(slack_escape(command_text(command))) == command


@SETTINGS
@given(REFS, REFS, RANKS)
def test_command_text_of_rank_show_and_history_parses_back(list_ref: str, lead_ref: str, rank: int) -> None:
    for command in (RankLead(list_ref, lead_ref, rank), ShowLead(list_ref, lead_ref), LeadHistory(list_ref, lead_ref)):
        assert parse(slack_escape(command_text(command))) == command
