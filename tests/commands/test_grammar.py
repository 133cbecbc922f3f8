"""The /lead text grammar: tokens, every command's valid shapes, and how each mistake is refused."""

from __future__ import annotations

import time

import pytest

from commands.grammar import (
    ALL_USAGE,
    EXAMPLES,
    SUBCOMMANDS,
    USAGE,
    WRITE_SUBCOMMANDS,
    AddLead,
    Help,
    Invalid,
    OpenModal,
    RankLead,
    SetLead,
    ShowLead,
    Token,
    TokenizeError,
    parse,
    tokenize,
)

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
    ("rank “Spring leads” lead-10 +100", RankLead(SPRING, "lead-10", 100)),
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
    assert type(result).__name__.lower().startswith(subcommand)
    assert parse(EXAMPLES[subcommand]) == result  # also as pasted, with /lead in front


def test_constants() -> None:
    assert tuple(USAGE) == SUBCOMMANDS
    assert set(EXAMPLES) | {"help"} == set(SUBCOMMANDS)
    assert sorted(WRITE_SUBCOMMANDS) == ["add", "rank", "set"]
    assert ALL_USAGE.splitlines() == list(USAGE.values())


INVALID = [
    # (text, subcommand, field, message fragment)
    ("frob", None, None, "/lead has no command 'frob'; use add, rank, show, set or help."),
    ("rnak a b 1", None, None, "(did you mean rank?)"),
    ("sho a b", None, None, "did you mean show?"),
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
    ("add L u1 4915100000040 5 a=1 loose", "add", "data", "'loose' has no '='"),
    ("set L l1 a=1 loose", "set", "data", "'loose' has no '='"),
    ("set L l1 number=+4915100000040 5", "set", "data", "'5' has no '='"),
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


def test_messages_quote_long_input_truncated() -> None:
    result = parse("rank A l1 " + "x" * 500)
    assert isinstance(result, Invalid)
    assert "x" * 39 + "…'" in result.message
    assert len(result.message) < 200


def test_long_text_is_quick() -> None:
    texts = [
        "set A l1 " + " ".join(f"k{i}=v{i}" for i in range(2000)),
        "x" * 10_000,
        "add A u " + "1 " * 5000 + "5",
        'show "' + "a" * 10_000,
        '"' * 10_000,
        "set A l1 " + "a=" + "b" * 10_000,
        "rank A l " + "9" * 10_000,
        "&amp;" * 2000,
    ]
    started = time.perf_counter()
    for text in texts:
        parse(text, default_region="DE")
    assert time.perf_counter() - started < 1.0
