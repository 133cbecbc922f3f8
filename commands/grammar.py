"""The /lead command text: tokenizer and parser into typed commands.

`parse` never raises: anything it cannot read becomes an `Invalid` with one sentence naming what is wrong and
the usage line to show, so the bot can answer every input within Slack's 3 seconds. Pure: no I/O, no logging.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from .fields import (
    FIELD_DATA,
    FIELD_LEAD,
    FIELD_LIST,
    FIELD_NUMBER,
    FIELD_RANK,
    FIELD_UID,
    FieldError,
    parse_data_pair,
    parse_number,
    parse_rank,
    parse_uid,
    quote_input,
)

USAGE = {
    "add": "/lead add <list> <uid> <number> <rank> [key=value ...]",
    "rank": "/lead rank <list> <lead> <rank>",
    "show": "/lead show <list> <lead>",
    "set": "/lead set <list> <lead> key=value ...",
    "help": "/lead help",
}
ALL_USAGE = "\n".join(USAGE.values())
EXAMPLES = {
    "add": '/lead add "Spring leads" uuid_100 4916098119998 500 address="martin mendalde" "new data"=new',
    "rank": '/lead rank "Spring leads" lead-10 100',
    "show": '/lead show "Spring leads" lead-40',
    "set": '/lead set "Spring leads" lead-12 rank=200 "new data"=new "old data"=null',
}
SUBCOMMANDS = ("add", "rank", "show", "set", "help")
WRITE_SUBCOMMANDS = frozenset({"add", "rank", "set"})

_HELP_WORDS = frozenset({"help", "?"})
_SET_FIELDS = (FIELD_UID, FIELD_NUMBER, FIELD_RANK)
_NULL = "null"
_ARGUMENTS = {  # what each positional is, for "needs <x>" messages
    FIELD_LIST: "the list's name or id",
    FIELD_LEAD: "the lead's uid, id or number",
    FIELD_UID: "the new lead's own id",
    FIELD_NUMBER: "its phone number",
    FIELD_RANK: "a whole number",
}
_POSITIONALS = {
    "add": (FIELD_LIST, FIELD_UID, FIELD_NUMBER, FIELD_RANK),
    "rank": (FIELD_LIST, FIELD_LEAD, FIELD_RANK),
    "show": (FIELD_LIST, FIELD_LEAD),
    "set": (FIELD_LIST, FIELD_LEAD),
}
_QUOTE_HINT = 'put names and numbers with spaces in double quotes, like "Spring leads"'
# A piece of a phone number typed with spaces (+49 151 000 000 40): digits and separators, + only in front.
_NUMBER_HEAD = re.compile(r"\+?[0-9().\-/]*[0-9][0-9().\-/]*")
_NUMBER_PIECE = re.compile(r"[0-9().\-/]*[0-9][0-9().\-/]*")
# Slack escapes exactly these three in command text; nothing else is an entity to us.
_SLACK_ENTITIES = re.compile(r"&(amp|lt|gt);")
_ENTITY_CHARS = {"amp": "&", "lt": "<", "gt": ">"}
_SMART_QUOTES = str.maketrans(dict.fromkeys("“”„″", '"'))


@dataclass(frozen=True, slots=True)
class AddLead:
    list_ref: str
    uid: str
    number: str  # E.164
    rank: int
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RankLead:
    list_ref: str
    lead_ref: str
    rank: int


@dataclass(frozen=True, slots=True)
class ShowLead:
    list_ref: str
    lead_ref: str


@dataclass(frozen=True, slots=True)
class SetLead:
    """A partial update: only the fields given change; a data value None deletes that variable."""

    list_ref: str
    lead_ref: str
    uid: str | None = None
    number: str | None = None
    rank: int | None = None
    data: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Help:
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class OpenModal:
    """A subcommand with no arguments at all: the bot opens its modal instead of failing."""

    subcommand: str


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why the text was refused (one sentence) and the usage line(s) to show with it."""

    message: str
    usage: str
    field: str | None = None
    subcommand: str | None = None


Command = AddLead | RankLead | ShowLead | SetLead
ParseResult = AddLead | RankLead | ShowLead | SetLead | Help | OpenModal | Invalid


@dataclass(frozen=True, slots=True)
class Token:
    """One whitespace-separated word after unquoting. `key`/`value` are set when it has an unquoted '='
    (split at the first one); the *_quoted flags say whether any part of that side was in quotes, because a
    quoted `"null"` is text, not a delete, and a quoted `"rank"` is a data key, not the rank field."""

    text: str
    key: str | None = None
    value: str | None = None
    value_quoted: bool = False
    key_quoted: bool = False


class TokenizeError(ValueError):
    """The text cannot be split into tokens (an unclosed quote); `message` is one sentence for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class _Refusal(Exception):
    """Internal: a grammar error on the way to an Invalid."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def _normalize(text: str) -> str:
    """Undo Slack's escaping of & < > (exactly those) and its smart double quotes."""
    text = _SLACK_ENTITIES.sub(lambda match: _ENTITY_CHARS[match.group(1)], text)
    return text.translate(_SMART_QUOTES)


def tokenize(text: str) -> list[Token]:
    """Split command text as Slack sends it into tokens. Double quotes group text anywhere inside a token and
    hide '=' from splitting; inside them only \\" and \\\\ are escapes. Single quotes are ordinary characters
    (O'Brien)."""
    text = _normalize(text)
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        chars: list[str] = []
        split_at: int | None = None  # index in chars of the first unquoted '='
        key_quoted = value_quoted = False
        while i < n and not text[i].isspace():
            ch = text[i]
            if ch == '"':
                quote_start = i
                i += 1
                while i < n and text[i] != '"':
                    if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\':
                        i += 1
                    chars.append(text[i])
                    i += 1
                if i >= n:
                    raise TokenizeError(
                        f"there is an unclosed double quote in {quote_input(text[quote_start:])}; close it with "
                        'another ".'
                    )
                if split_at is None:
                    key_quoted = True
                else:
                    value_quoted = True
                i += 1
                continue
            if ch == "=" and split_at is None:
                split_at = len(chars)
            chars.append(ch)
            i += 1
        token_text = "".join(chars)
        if split_at is None:
            tokens.append(Token(token_text, key_quoted=key_quoted))
        else:
            tokens.append(
                Token(
                    token_text,
                    key=token_text[:split_at],
                    value=token_text[split_at + 1 :],
                    value_quoted=value_quoted,
                    key_quoted=key_quoted,
                )
            )
    return tokens


def parse(text: str, *, default_region: str | None = None) -> ParseResult:
    """Parse the text after `/lead` (a leading "/lead" is tolerated, for the console and for pasted examples).
    `default_region` (ISO 3166 alpha-2) reads national phone numbers. Never raises."""
    try:
        tokens = tokenize(text)
    except TokenizeError as error:
        return _invalid(error.message, _guess_subcommand(text))
    if tokens and tokens[0].key is None and tokens[0].text.lower() == "/lead":
        tokens = tokens[1:]
    if not tokens:
        return Help()
    head, args = tokens[0], tokens[1:]
    word = head.text.strip().lower()
    if word in _HELP_WORDS:
        return _parse_help(args)
    if word not in _POSITIONALS:
        return Invalid(_unknown_command(head.text), ALL_USAGE)
    if not args:
        return OpenModal(word)
    try:
        return _PARSERS[word](args, default_region)
    except (FieldError, _Refusal) as error:
        return _invalid(error.message, word, error.field)


def _invalid(message: str, subcommand: str | None, field: str | None = None) -> Invalid:
    usage = USAGE.get(subcommand or "", ALL_USAGE)
    return Invalid(message, usage, field, subcommand)


def _guess_subcommand(text: str) -> str | None:
    """The subcommand of text that could not be tokenized, when its first word names one, to show its usage."""
    words = _normalize(text).split(maxsplit=2)
    if words and words[0].lower() == "/lead":
        words = words[1:]
    word = words[0].strip('"').lower() if words else ""
    if word in _HELP_WORDS:
        return "help"
    return word if word in USAGE else None


def _unknown_command(typed: str) -> str:
    matches = difflib.get_close_matches(typed[:40].lower(), SUBCOMMANDS, n=1, cutoff=0.6)
    if matches:
        return f"/lead has no command {quote_input(typed)} (did you mean {matches[0]}?)."
    return f"/lead has no command {quote_input(typed)}; use add, rank, show, set or help."


def _parse_help(args: list[Token]) -> Help | Invalid:
    if not args:
        return Help()
    if len(args) > 1:
        return Invalid(
            f"help takes at most one topic; {quote_input(args[1].text)} is one too many.", ALL_USAGE, None, "help"
        )
    topic = args[0].text.strip().lower()
    if topic in _HELP_WORDS:
        return Help("help")
    if topic in SUBCOMMANDS:
        return Help(topic)
    matches = difflib.get_close_matches(topic[:40], SUBCOMMANDS, n=1, cutoff=0.6)
    hint = f"did you mean {matches[0]}?" if matches else "topics are add, rank, show, set and help"
    return Invalid(f"there is no help on {quote_input(args[0].text)} ({hint}).", ALL_USAGE, None, "help")


def _count_leading(args: list[Token]) -> int:
    """How many tokens come before the first key=value one."""
    leading = 0
    while leading < len(args) and args[leading].key is None:
        leading += 1
    return leading


def _split_arguments(subcommand: str, args: list[Token]) -> tuple[list[Token], list[Token]]:
    """The positional tokens and the key=value tokens after them, or a refusal saying which one is missing or
    which is one too many."""
    names = _POSITIONALS[subcommand]
    wanted = len(names)
    leading = _count_leading(args)
    if leading < wanted:
        raise _missing(subcommand, names, leading, args[leading] if leading < len(args) else None)
    if leading > wanted:
        raise _too_many(subcommand, args, leading)
    return args[:wanted], args[wanted:]


def _too_many(subcommand: str, args: list[Token], leading: int) -> _Refusal:
    names = _POSITIONALS[subcommand]
    wanted = len(names)
    return _Refusal(
        f"{subcommand} takes {wanted} arguments ({' '.join(f'<{name}>' for name in names)}) but got {leading}, "
        f"so {quote_input(args[wanted].text)} is one too many; {_QUOTE_HINT}."
    )


def _is_number_piece(token: Token, *, first: bool) -> bool:
    if token.key is not None or token.key_quoted:
        return False
    return bool((_NUMBER_HEAD if first else _NUMBER_PIECE).fullmatch(token.text))


def _missing(subcommand: str, names: tuple[str, ...], index: int, got: Token | None) -> _Refusal:
    name = names[index]
    where = "" if index == 0 else f" after the {names[index - 1]}"
    if got is None:
        return _Refusal(f"{subcommand} needs <{name}> ({_ARGUMENTS[name]}){where}.", name)
    if not got.key_quoted and (got.key or "").strip().lower() == name:
        return _Refusal(f"{subcommand} takes <{name}>{where} by position, without {quote_input(name + '=')}.", name)
    return _Refusal(
        f"{subcommand} needs <{name}> ({_ARGUMENTS[name]}){where} but got the key=value {quote_input(got.text)} "
        f"(put it in double quotes if that is the {name} itself).",
        name,
    )


def _ref(token: Token, name: str) -> str:
    ref = token.text.strip()
    if not ref:
        raise _Refusal(f"{name} must not be empty; give {_ARGUMENTS[name]}.", name)
    return ref


def _value_or_delete(token: Token) -> str | None:
    """The token's value, or None for an unquoted `null` (delete)."""
    return None if token.value == _NULL and not token.value_quoted else (token.value or "")


def _stray(subcommand: str, token: Token) -> _Refusal:
    return _Refusal(
        f"{subcommand} takes only key=value pairs after the {_POSITIONALS[subcommand][-1]}, but "
        f"{quote_input(token.text)} has no '='; {_QUOTE_HINT}.",
        FIELD_DATA,
    )


def _data_pairs(subcommand: str, pairs: list[Token], *, allow_delete: bool) -> dict[str, str | None]:
    data: dict[str, str | None] = {}
    for token in pairs:
        if token.key is None:
            raise _stray(subcommand, token)
        key, value = parse_data_pair(token.key, _value_or_delete(token), allow_delete=allow_delete)
        if key in data:
            raise FieldError(FIELD_DATA, f"data key {quote_input(key)} is given twice.")
        data[key] = value
    return data


def _parse_add(args: list[Token], region: str | None) -> AddLead:
    """An unquoted number typed with spaces (`+49 151 000 000 40`) is taken whole: every token between the uid
    and the rank looks like a piece of it, and no valid command reads otherwise."""
    leading = _count_leading(args)
    pieces = args[2 : leading - 1]
    joined = (
        leading > len(_POSITIONALS["add"])
        and _is_number_piece(pieces[0], first=True)
        and all(_is_number_piece(piece, first=False) for piece in pieces[1:])
    )
    if joined:
        merged = [args[0], args[1], Token(" ".join(piece.text for piece in pieces)), *args[leading - 1 :]]
        (list_token, uid_token, number_token, rank_token), pairs = _split_arguments("add", merged)
    else:
        (list_token, uid_token, number_token, rank_token), pairs = _split_arguments("add", args)
    list_ref = _ref(list_token, FIELD_LIST)
    uid = parse_uid(uid_token.text)
    try:
        number = parse_number(number_token.text, region)
    except FieldError:
        if joined and _is_number(pieces[0].text, region):  # a number, then one argument too many
            raise _too_many("add", args, leading) from None
        raise
    rank = parse_rank(rank_token.text)
    data = _data_pairs("add", pairs, allow_delete=False)
    # allow_delete=False guarantees no None values.
    return AddLead(list_ref, uid, number, rank, {key: value for key, value in data.items() if value is not None})


def _is_number(text: str, region: str | None) -> bool:
    try:
        parse_number(text, region)
    except FieldError:
        return False
    return True


def _parse_rank(args: list[Token], region: str | None) -> RankLead:
    (list_token, lead_token, rank_token), extra = _split_arguments("rank", args)
    if extra:
        raise _Refusal(f"rank takes no key=value pairs; {quote_input(extra[0].text)} is one too many.")
    return RankLead(_ref(list_token, FIELD_LIST), _ref(lead_token, FIELD_LEAD), parse_rank(rank_token.text))


def _parse_show(args: list[Token], region: str | None) -> ShowLead:
    (list_token, lead_token), extra = _split_arguments("show", args)
    if extra:
        raise _Refusal(f"show takes no key=value pairs; {quote_input(extra[0].text)} is one too many.")
    return ShowLead(_ref(list_token, FIELD_LIST), _ref(lead_token, FIELD_LEAD))


def _parse_set(args: list[Token], region: str | None) -> SetLead:
    (list_token, lead_token), changes = _split_arguments("set", args)
    list_ref, lead_ref = _ref(list_token, FIELD_LIST), _ref(lead_token, FIELD_LEAD)
    if not changes:
        raise _Refusal("set needs at least one key=value change after the lead, like rank=200.")
    uid: str | None = None
    number: str | None = None
    rank: int | None = None
    seen: set[str] = set()
    data_tokens: list[Token] = []
    index = 0
    while index < len(changes):
        token = changes[index]
        index += 1
        name = token.key.strip().lower() if token.key is not None and not token.key_quoted else None
        if name not in _SET_FIELDS:
            data_tokens.append(token)
            continue
        if name in seen:
            raise _Refusal(f"{name} is given twice.", name)
        seen.add(name)
        value = _value_or_delete(token)
        if value is None:
            raise _Refusal(f"{name} cannot be deleted, only changed; every lead has one.", name)
        if name == FIELD_UID:
            uid = parse_uid(value)
        elif name == FIELD_NUMBER:
            # number=+49 151 000 000 40 typed without quotes: the bare digit groups after it belong to it.
            given = index
            if not token.value_quoted:
                while index < len(changes) and _is_number_piece(changes[index], first=False):
                    value += " " + changes[index].text
                    index += 1
            try:
                number = parse_number(value, region)
            except FieldError:
                if index > given and _is_number(token.value or "", region):  # a number, then a stray word
                    raise _stray("set", changes[given]) from None
                raise
        else:
            rank = parse_rank(value)
    data = _data_pairs("set", data_tokens, allow_delete=True)
    return SetLead(list_ref, lead_ref, uid=uid, number=number, rank=rank, data=data)


_PARSERS = {"add": _parse_add, "rank": _parse_rank, "show": _parse_show, "set": _parse_set}
