"""The /lead text grammar: tokens, every command's valid shapes, and how each mistake is refused."""

from __future__ import annotations

import pytest

from commands.add import AddLead
from commands.campaign import ShowCampaign
from commands.find import FindLeads
from commands.grammar import MAX_NUMBER_PIECES, Help, Invalid, OpenModal, Token, TokenizeError, parse, tokenize
from commands.history import LeadHistory
from commands.hopper import ShowHopper
from commands.rank import RankLead
from commands.remove import RemoveLead
from commands.set import SetLead
from commands.show import ShowLead
from commands.undo import UndoChange
from commands.why import WhyLead
from tests.subcommands import ALL_USAGE, EXAMPLES, SUBCOMMANDS, USAGE, WRITE_SUBCOMMANDS

SPRING = "Spring leads"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("  a\u00a0b\u3000c\n", [Token("a"), Token("b"), Token("c")]),  # any Unicode whitespace separates
        ('"Spring leads"', [Token(SPRING, key_quoted=True)]),
        ("“Spring leads”", [Token(SPRING, key_quoted=True)]),  # smart quotes from Slack clients
        ("„Spring leads″", [Token(SPRING, key_quoted=True)]),
        ("O'Brien", [Token("O'Brien")]),  # single quotes are plain characters
        ("‘x y’", [Token("‘x"), Token("y’")]),
        ('ab"c d"e', [Token("abc de", key_quoted=True)]),
        ('address="martin mendalde"', [Token("address=martin mendalde", "address", "martin mendalde", True)]),
        ('"new data"=new', [Token("new data=new", "new data", "new", False, True)]),
        ('"a=b"=c', [Token("a=b=c", "a=b", "c", False, True)]),
        ("a=b=c", [Token("a=b=c", "a", "b=c")]),
        ('x="null"', [Token("x=null", "x", "null", True)]),
        ("x=null", [Token("x=null", "x", "null", False)]),
        ("x=", [Token("x=", "x", "")]),
        ("=x", [Token("=x", "", "x")]),
        ('""', [Token("", key_quoted=True)]),
        (r'"say \"hi\" \\ \n"', [Token(r'say "hi" \ \n', key_quoted=True)]),  # only \" and \\ escape
        (r"a\b", [Token(r"a\b")]),  # backslashes outside quotes are literal
        ("&lt;b&gt; &amp;lt;", [Token("<b>"), Token("&lt;")]),  # Slack's three escapes, undone once
        ("&quot;x&quot; &#34;", [Token("&quot;x&quot;"), Token("&#34;")]),  # other entities stay as typed
    ],
)
def test_tokenize(text: str, expected: list[Token]) -> None:
    assert tokenize(text) == expected


@pytest.mark.parametrize("text", ['"open', 'a "b c', 'x="y', r'"escaped end\"', "“smart"])
def test_tokenize_refuses_unclosed_quote(text: str) -> None:
    with pytest.raises(TokenizeError) as caught:
        tokenize(text)
    assert "unclosed double quote" in caught.value.message
    assert isinstance(caught.value, ValueError)


VALID = [
    # add
    (
        EXAMPLES["add"],
        AddLead(SPRING, "uuid_100", "+4916098119998", 500, {"address": "martin mendalde", "new data": "new"}),
    ),
    ('add "Spring leads" uuid_100 4916098119998 500', AddLead(SPRING, "uuid_100", "+4916098119998", 500, {})),
    ("ADD Autumn u1 +4915100000040 -32768", AddLead("Autumn", "u1", "+4915100000040", -32768, {})),
    ('add Autumn u1 "+49 151 000 000 40" 1', AddLead("Autumn", "u1", "+4915100000040", 1, {})),
    ("add Autumn u1 +49 151 000 000 40 1 a=b", AddLead("Autumn", "u1", "+4915100000040", 1, {"a": "b"})),
    ('add Autumn u1 4915100000040 1 x="null" y=', AddLead("Autumn", "u1", "+4915100000040", 1, {"x": "null", "y": ""})),
    ("add Autumn u1 4915100000040 1 rank=5", AddLead("Autumn", "u1", "+4915100000040", 1, {"rank": "5"})),
    ('add "a=b" "O\'Brien x" 4915100000040 1', AddLead("a=b", "O'Brien x", "+4915100000040", 1, {})),
    # rank
    (EXAMPLES["rank"], RankLead(SPRING, "lead-10", 100)),
    ("rank “Spring leads” lead-10 +100", RankLead(SPRING, "lead-10", 100, relative=True)),  # refused by the plan
    ("rank “Spring leads” lead-10 TOP", RankLead(SPRING, "lead-10", None, top=True)),
    ("Rank Autumn +4915100000040 32767", RankLead("Autumn", "+4915100000040", 32767)),
    # show
    (EXAMPLES["show"], ShowLead(SPRING, "lead-40")),
    ('show " Spring leads " " lead-40 "', ShowLead(SPRING, "lead-40")),
    ("show Autumn O'Brien", ShowLead("Autumn", "O'Brien")),
    ("show &lt;x&gt; a&amp;b", ShowLead("<x>", "a&b")),
    # set
    (
        EXAMPLES["set"],
        SetLead(SPRING, "lead-12", rank=200, data={"new data": "new", "old data": None}),
    ),
    ('set "Spring leads" lead-12 "old data"=null', SetLead(SPRING, "lead-12", data={"old data": None})),
    ("set A l1 uid=new-uid", SetLead("A", "l1", uid="new-uid")),
    ("set A l1 NUMBER=004915100000040 Rank=-1", SetLead("A", "l1", number="+4915100000040", rank=-1)),
    ("set A l1 number=+49 151 000 000 40 rank=2", SetLead("A", "l1", number="+4915100000040", rank=2)),
    ('set A l1 "uid"=x "rank"=y', SetLead("A", "l1", data={"uid": "x", "rank": "y"})),
    # a quoted key naming a read-only lead field is a data variable
    ('set A l1 "status"=do_not_call', SetLead("A", "l1", data={"status": "do_not_call"})),
    ('set A l1 "ID"=7 "call_count"=null', SetLead("A", "l1", data={"ID": "7", "call_count": None})),
    ('add L u1 4915100000040 5 "callCount"=3', AddLead("L", "u1", "+4915100000040", 5, {"callCount": "3"})),
    # keys that only contain a read-only name are ordinary data variables
    ("set A l1 status_note=x my_id=1", SetLead("A", "l1", data={"status_note": "x", "my_id": "1"})),
    # single quotes inside a valid command are text
    ("show A 'lead-40'", ShowLead("A", "'lead-40'")),
    ("set A l1 note='hi'", SetLead("A", "l1", data={"note": "'hi'"})),
    ('set A l1 x="null" y=null z=Null', SetLead("A", "l1", data={"x": "null", "y": None, "z": "Null"})),
    ("set A l1 formula=a=b", SetLead("A", "l1", data={"formula": "a=b"})),
    ("set A l1 Key=1 key=2", SetLead("A", "l1", data={"Key": "1", "key": "2"})),  # data keys are case-sensitive
    # help and modals
    ("", Help()),
    ("   ", Help()),
    ("help", Help()),
    ("HELP", Help()),
    ("?", Help()),
    ("help rank", Help("rank")),
    ("? Set", Help("set")),
    ("help ?", Help("help")),
    # help on one command: the command, then help or ? as its only argument
    ("rank help", Help("rank")),
    ("add help", Help("add")),
    ("SHOW Help", Help("show")),
    ("set ?", Help("set")),
    ("/lead show help", Help("show")),
    ("add", OpenModal("add")),
    ("RANK", OpenModal("rank")),
    ("show  ", OpenModal("show")),
    ("set", OpenModal("set")),
    # a pasted "/lead" in front is tolerated
    ("/lead", Help()),
    ("/lead show Autumn l1", ShowLead("Autumn", "l1")),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_commands(text: str, expected: object) -> None:
    assert parse(text) == expected


def test_national_numbers_with_a_region() -> None:
    assert parse("add Autumn u1 0151 00000040 1", default_region="DE") == AddLead(
        "Autumn", "u1", "+4915100000040", 1, {}
    )
    assert parse("set A l1 number=2125551234", default_region="us") == SetLead("A", "l1", number="+12125551234")


@pytest.mark.parametrize("subcommand", sorted(EXAMPLES))
def test_every_example_parses(subcommand: str) -> None:
    result = parse(EXAMPLES[subcommand].removeprefix("/lead "))
    assert not isinstance(result, Invalid), result
    expected = {
        "add": AddLead,
        "rank": RankLead,
        "show": ShowLead,
        "set": SetLead,
        "history": LeadHistory,
        "find": FindLeads,
        "remove": RemoveLead,
        "undo": UndoChange,
        "campaign": ShowCampaign,
        "hopper": ShowHopper,
        "why": WhyLead,
    }
    assert isinstance(result, expected[subcommand])
    assert parse(EXAMPLES[subcommand]) == result  # also as pasted, with /lead in front


def test_constants() -> None:
    assert tuple(USAGE) == SUBCOMMANDS
    assert set(EXAMPLES) | {"help"} == set(SUBCOMMANDS)
    assert sorted(WRITE_SUBCOMMANDS) == ["add", "rank", "remove", "set", "undo"]
    assert ALL_USAGE.splitlines() == list(USAGE.values())


INVALID = [
    # (text, subcommand, field, message fragment)
    (
        "frob",
        None,
        None,
        "/lead has no command 'frob'; use add, rank, show, find, set, history, remove, undo, campaign, hopper, why or "
        "help.",
    ),
    ("help frob", "help", None, "there is no help on 'frob'"),
    ("help rank show", "help", None, "'show' is one too many"),
    ('show "Spring leads', "show", None, "unclosed double quote"),
    ('"unclosed', None, None, "unclosed double quote"),
    # missing positionals
    ("add x=1", "add", "list", "add needs <list>"),
    ('add "Spring leads"', "add", "uid", "add needs <uid> (the new lead's own id) after the list."),
    ('add "Spring leads" u1', "add", "number", "add needs <number> (its phone number) after the uid."),
    ('add "Spring leads" u1 4915100000040', "add", "rank", "add needs <rank> (a whole number) after the number."),
    ('add "Spring leads" uid=u1', "add", "uid", "by position, without 'uid='"),
    ("add L u1 4915100000040 a=b", "add", "rank", "add needs <rank>"),
    ('rank "Spring leads" rank=5', "rank", "lead", "rank needs <lead> (the lead's uid, id or number) after the list"),
    ('rank "Spring leads" lead-1', "rank", "rank", "rank needs <rank>"),
    ("show Autumn", "show", "lead", "show needs <lead>"),
    ("set Autumn", "set", "lead", "set needs <lead>"),
    ("set Autumn rank=5", "set", "lead", "'rank=5'"),
    ("set Autumn l1", "set", None, "set needs at least one key=value change"),
    # too many
    ("rank Spring leads lead-10 100", "rank", None, "so '100' is one too many"),
    ("show Spring leads lead-40", "show", None, "one too many; put names and numbers with spaces in double quotes"),
    ("show A l1 x=1", "show", None, "show takes no key=value pairs; 'x=1' is one too many."),
    ("rank A l1 5 x=1", "rank", None, "rank takes no key=value pairs"),
    ("add L u1 4915100000040 500 600", "add", None, "'600' is one too many"),
    ("add L u1 4915100000040 5 a=1 loose", "add", "data", 'put values with spaces in double quotes: a="1 loose".'),
    ("set L l1 a=1 loose", "set", "data", "'loose' has no '='"),
    ("set L l1 number=+4915100000040 5", "set", "data", "'5' is not a key=value change"),
    ("set L l1 number=+49 151 5", "set", "number", "number '+49 151 5' is not a valid phone number"),
    ("add L u1 +49 151 5", "add", "number", "number '+49 151' is not a valid phone number"),
    # empty refs
    ('show "" l1', "show", "list", "list must not be empty"),
    ('show A "  "', "show", "lead", "lead must not be empty"),
    ('rank "" l1 5', "rank", "list", "list must not be empty"),
    # field values
    ('add L "" 4915100000040 5', "add", "uid", "uid must not be empty."),
    ("add L u1 abc 5", "add", "number", "number 'abc' is not a phone number"),
    ("add L u1 0151 00000040 5", "add", "number", "LEADBOT_DEFAULT_REGION"),
    ("add L u1 +999123 5", "add", "number", "known country code"),
    ("add L u1 4915100000040 ten", "add", "rank", "got 'ten'"),
    ("rank A l1 1.5", "rank", "rank", "got '1.5'"),
    ("rank A l1 32768", "rank", "rank", "out of range"),
    ("set A l1 rank=", "set", "rank", "rank must not be empty"),
    ("set A l1 rank=x", "set", "rank", "got 'x'"),
    ("set A l1 number=12", "set", "number", "not a valid phone number"),
    ('set A l1 uid=""', "set", "uid", "uid must not be empty."),
    # deletes and duplicates
    ("set A l1 uid=null", "set", "uid", "uid cannot be deleted"),
    ("set A l1 NUMBER=null", "set", "number", "number cannot be deleted"),
    ("set A l1 rank=null", "set", "rank", "rank cannot be deleted"),
    ("set A l1 rank=1 RANK=2", "set", "rank", "rank is given twice."),
    ("set A l1 x=1 x=2", "set", "data", "data key 'x' is given twice."),
    ('set A l1 x=1 " x "=2', "set", "data", "data key 'x' is given twice."),
    ("add L u1 4915100000040 5 x=1 x=1", "add", "data", "data key 'x' is given twice."),
    ("add L u1 4915100000040 5 old=null", "add", "data", "a new lead has none to delete"),
    ("set A l1 =x", "set", "data", "data keys must not be empty"),
    ('set A l1 ""=x', "set", "data", "data keys must not be empty"),
    ('add L u1 4915100000040 5 ""=x', "add", "data", "data keys must not be empty"),
]


@pytest.mark.parametrize(("text", "subcommand", "field", "fragment"), INVALID)
def test_invalid_commands(text: str, subcommand: str | None, field: str | None, fragment: str) -> None:
    result = parse(text)
    assert isinstance(result, Invalid), result
    assert fragment in result.message
    assert (result.subcommand, result.field) == (subcommand, field)
    assert result.usage == (USAGE[subcommand] if subcommand in ("add", "rank", "show", "set") else ALL_USAGE)
    assert result.message.endswith(".")
    assert "Token(" not in result.message and "None" not in result.message


SUGGESTED = [
    # (typed, suggested subcommand): only the suggestion's usage line is shown
    ("rnak a b 1", "rank"),
    ("shwo", "show"),
    ("sho a b", "show"),
    ("ad L u1", "add"),
    ("sett A l1 rank=1", "set"),
    ("hepl", "help"),
]


@pytest.mark.parametrize(("text", "suggested"), SUGGESTED)
def test_unknown_command_with_a_suggestion_shows_only_its_usage(text: str, suggested: str) -> None:
    result = parse(text)
    assert isinstance(result, Invalid), result
    typed = text.split()[0]
    assert result.message == f"/lead has no command '{typed}' (did you mean {suggested}?)."
    assert (result.usage, result.field, result.subcommand) == (USAGE[suggested], None, None)


@pytest.mark.parametrize("text", ["frob", "delete A l1", "xyzzy 1 2"])
def test_unknown_command_without_a_suggestion_shows_all_usage(text: str) -> None:
    result = parse(text)
    assert isinstance(result, Invalid), result
    assert result.message.endswith(
        "; use add, rank, show, find, set, history, remove, undo, campaign, hopper, why or help."
    )
    assert result.usage == ALL_USAGE


STATUS_MESSAGE = (
    "status is set by the dialer from call outcomes and cannot be changed from leadbot; to store a data variable "
    'named status, put the key in double quotes: "status"=do_not_call.'
)

MESSAGES = [
    # (text, subcommand, field, the whole message)
    # 1. read-only lead fields typed as unquoted keys
    ('set "Spring leads" lead-12 status=do_not_call', "set", "data", STATUS_MESSAGE),
    ('add "Spring leads" u1 +4916098119998 5 status=do_not_call', "add", "data", STATUS_MESSAGE),
    (
        "set A l1 STATUS=null",
        "set",
        "data",
        "STATUS is set by the dialer from call outcomes and cannot be changed from leadbot; to store a data "
        'variable named STATUS, put the key in double quotes: "STATUS"=null.',
    ),
    (
        "set A l1 id=42",
        "set",
        "data",
        'id is read-only: babelforce sets it; to store a data variable named id, write "id"=42.',
    ),
    (
        "set A l1 rank=1 callCount=0",
        "set",
        "data",
        'callCount is read-only: babelforce sets it; to store a data variable named callCount, write "callCount"=0.',
    ),
    (
        'add L u1 4915100000040 5 a=b Last_Updated="last week"',
        "add",
        "data",
        "Last_Updated is read-only: babelforce sets it; to store a data variable named Last_Updated, write "
        '"Last_Updated"="last week".',
    ),
    *(
        (
            f"set A l1 {key}=1",
            "set",
            "data",
            f'{key} is read-only: babelforce sets it; to store a data variable named {key}, write "{key}"=1.',
        )
        for key in (
            "ID",
            "call_count",
            "listId",
            "list_id",
            "campaignId",
            "CAMPAIGN_ID",
            "dateCreated",
            "date_created",
            "lastUpdated",
            "dateCalled",
            "date_called",
            "duration",
        )
    ),
    (
        'set A l1 duration=""',
        "set",
        "data",
        'duration is read-only: babelforce sets it; to store a data variable named duration, write "duration"="".',
    ),
    # 3. spaces around '='
    ('set "Spring leads" lead-5 rank = 5', "set", "data", "no spaces around '=': write rank=5."),
    ('set "Spring leads" lead-5 rank= 5', "set", "data", "no spaces around '=': write rank=5."),
    ('set "Spring leads" lead-5 rank =5', "set", "data", "no spaces around '=': write rank=5."),
    ("set A l1 a=1 city = Berlin b=2", "set", "data", "no spaces around '=': write city=Berlin."),
    ("set A l1 rank =", "set", "data", "no spaces around '=': write rank=value."),
    ('set A l1 "new data" = new', "set", "data", "no spaces around '=': write \"new data\"=new."),
    (
        'add L u1 4915100000040 5 address = "martin mendalde"',
        "add",
        "data",
        "no spaces around '=': write address=\"martin mendalde\".",
    ),
    ("add L u1 +49 151 000 000 40 5 city= Berlin", "add", "data", "no spaces around '=': write city=Berlin."),
    ("set A l1 status = do_not_call", "set", "data", STATUS_MESSAGE),
    # a bare word where a key=value change belongs
    (
        'set "Spring leads" lead-5b city',
        "set",
        "data",
        "'city' is not a key=value change; to delete a data variable write city=null, to set one write city=value.",
    ),
    (
        'set "Spring leads" lead-5b city rank=2',
        "set",
        "data",
        "'city' is not a key=value change; to delete a data variable write city=null, to set one write city=value.",
    ),
    (
        "set A l1 rank=2 city",
        "set",
        "data",
        "'city' is not a key=value change; to delete a data variable write city=null, to set one write city=value.",
    ),
    (
        'set "Spring leads" lead-5b status',
        "set",
        "data",
        "'status' is not a key=value change; to delete a data variable write \"status\"=null, to set one write "
        '"status"=value.',
    ),
    (
        "add L u1 +4916098119998 5 city",
        "add",
        "data",
        "'city' is not a key=value pair; to set a data variable write city=value.",
    ),
    (
        "add L u1 +49 151 000 000 40 5 city a=b",
        "add",
        "data",
        "'city' is not a key=value pair; to set a data variable write city=value.",
    ),
    # 4. values with spaces, not quoted
    (
        'add "Spring leads" u1 +4916098119998 5 address=martin mendalde',
        "add",
        "data",
        "'mendalde' has no '='; put values with spaces in double quotes: address=\"martin mendalde\".",
    ),
    (
        'set A l1 "street name"=Unter den Linden x=1',
        "set",
        "data",
        "'den' has no '='; put values with spaces in double quotes: \"street name\"=\"Unter den Linden\".",
    ),
    (
        "set A l1 uid=O'Brien x",
        "set",
        "data",
        "'x' has no '='; put values with spaces in double quotes: uid=\"O'Brien x\".",
    ),
    # 5. single quotes used as quotes
    (
        "rank 'Spring leads' lead-10 100",
        "rank",
        None,
        "rank takes 3 arguments (<list> <lead> <rank>) but got 4, so '100' is one too many; use double quotes, not "
        'single: "Spring leads".',
    ),
    (
        "show ‘Spring leads’ lead-40",
        "show",
        None,
        "show takes 2 arguments (<list> <lead>) but got 3, so 'lead-40' is one too many; use double quotes, not "
        'single: "Spring leads".',
    ),
    (
        "set A l1 address='martin mendalde'",
        "set",
        "data",
        "'mendalde'' has no '='; use double quotes, not single: address=\"martin mendalde\".",
    ),
    (
        "rank 'Spring leads' lead-10",
        "rank",
        "rank",
        "rank must be a whole number from -32768 to 32767, or top; got 'lead-10'. Use double quotes, not single: "
        '"Spring leads".',
    ),
    (
        "help 'a b'",
        "help",
        None,
        "help takes at most one topic; 'b'' is one too many. Use double quotes, not single: \"a b\".",
    ),
]


@pytest.mark.parametrize(("text", "subcommand", "field", "message"), MESSAGES)
def test_messages(text: str, subcommand: str | None, field: str | None, message: str) -> None:
    result = parse(text)
    assert isinstance(result, Invalid), result
    assert result.message == message
    assert (result.subcommand, result.field) == (subcommand, field)
    assert result.usage == (USAGE[subcommand] if subcommand in ("add", "rank", "show", "set") else ALL_USAGE)


NUMBER_MESSAGES = [
    # (text, message): input typed without + or 00 never hears of a country code it did not type
    (
        'add "Spring leads" new-1 12345 500',
        "number '12345' is not a valid phone number; write it with its country code, e.g. +4916098119998.",
    ),
    (
        "set A l1 number=4915",
        "number '4915' is not a valid phone number; write it with its country code, e.g. +4916098119998.",
    ),
    (
        "add L u1 0151 2345678 5",
        "number '0151 2345678' is a national number; write it with its country code (+49 151 … for a German "
        "number). Whoever runs leadbot can set a default country (LEADBOT_DEFAULT_REGION).",
    ),
    # typed with a country code: its problem with that code is named
    ("add L u1 +112345 5", "number '+112345' is not a valid phone number: it is too short for country code +1."),
]


@pytest.mark.parametrize(("text", "message"), NUMBER_MESSAGES)
def test_number_messages(text: str, message: str) -> None:
    result = parse(text)
    assert isinstance(result, Invalid), result
    assert result.message == message
    assert result.field == "number"


def test_messages_quote_long_input_truncated() -> None:
    result = parse("rank A l1 " + "x" * 500)
    assert isinstance(result, Invalid)
    assert "x" * 39 + "…'" in result.message
    assert len(result.message) < 200


def test_long_text_costs_a_bounded_number_of_phone_number_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long hostile text must not make the parser try every split of its pieces as a phone number (the cost that
    would grow with the square of the text). Counted, not timed: timings live in bench/."""
    import phonenumbers

    calls = 0
    real_parse = phonenumbers.parse

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return real_parse(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(phonenumbers, "parse", counting)
    texts = [
        "set A l1 " + " ".join(f"k{i}=v{i}" for i in range(2000)),
        "x" * 10_000,
        "add A u " + "1 " * 5000 + "5",
        'show "' + "a" * 10_000,
        '"' * 10_000,
        "set A l1 " + "a=" + "b" * 10_000,
        "rank A l " + "9" * 10_000,
        "&amp;" * 2000,
        "set A l1 " + "'a " * 5000,  # single quotes that never close
        "add A u " + "1 " * 5000 + "city",
        "add A u1 4915100000040 5 " + "x= y " * 3000,
        "set A l1 " + "x = " * 3000,
    ]
    total = 0
    for text in texts:
        calls = 0
        parse(text, default_region="DE")
        assert calls <= 3 * MAX_NUMBER_PIECES, (text[:30], calls)
        total += calls
    assert total > 0, "no text reached the number parser: the count is broken"
