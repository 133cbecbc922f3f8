"""The /lead command text: tokenizer and parser into typed commands.

`parse` never raises: anything it cannot read becomes an `Invalid` with one sentence naming what is wrong and
the usage line to show, so the bot can answer every input within Slack's 3 seconds. Pure: no I/O, no logging.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .fields import (
    FIELD_DATA,
    FIELD_LEAD,
    FIELD_LIST,
    FIELD_NUMBER,
    FIELD_RANK,
    FIELD_UID,
    FieldError,
    is_read_only_field,
    parse_data_pair,
    parse_number,
    parse_rank,
    parse_uid,
    quote_input,
    read_only_error,
    shorten,
)

USAGE = {
    "add": "/lead add <list> <uid> <number> <rank> [key=value ...]",
    "rank": "/lead rank <list> <lead> <rank>",
    "show": "/lead show <list> <lead>",
    "set": "/lead set <list> <lead> key=value ...",
    "history": "/lead history <list> <lead>",
    "help": "/lead help",
}
ALL_USAGE = "\n".join(USAGE.values())
EXAMPLES = {
    "add": '/lead add "Spring leads" uuid_100 4916098119998 500 address="martin mendalde" "new data"=new',
    "rank": '/lead rank "Spring leads" lead-10 100',
    "show": '/lead show "Spring leads" lead-40',
    "set": '/lead set "Spring leads" lead-12 rank=200 "new data"=new "old data"=null',
    "history": '/lead history "Spring leads" lead-10',
}
SUBCOMMANDS = ("add", "rank", "show", "set", "history", "help")
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
    "history": (FIELD_LIST, FIELD_LEAD),
}
_QUOTE_HINT = 'put names and numbers with spaces in double quotes, like "Spring leads"'
# A piece of a phone number typed with spaces (+49 151 000 000 40): digits and separators, + only in front.
_NUMBER_HEAD = re.compile(r"\+?[0-9().\-/]*[0-9][0-9().\-/]*")
_NUMBER_PIECE = re.compile(r"[0-9().\-/]*[0-9][0-9().\-/]*")
# Slack escapes exactly these three in command text; nothing else is an entity to us.
_SLACK_ENTITIES = re.compile(r"&(amp|lt|gt);")
_ENTITY_CHARS = {"amp": "&", "lt": "<", "gt": ">"}
_SMART_QUOTES = str.maketrans(dict.fromkeys("“”„″", '"'))
# Single quotes as typed and as Slack clients curl them: 'Spring leads' is two tokens, the quotes part of them.
_SINGLE_OPEN = "'‘"
_SINGLE_CLOSE = "'’"
_WORD = re.compile(r"[^\W\d]\w*")  # a plain word, as data keys usually are (lead refs tend to have - or digits first)
_MAX_NUMBER_PIECES = 20  # a phone number typed with spaces never has more groups than digits (at most 20)


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
class LeadHistory:
    """The lead's recent changes, from leadbot's audit trail (no babelforce write)."""

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


Command = AddLead | RankLead | ShowLead | SetLead | LeadHistory
WriteCommand = AddLead | RankLead | SetLead
ParseResult = AddLead | RankLead | ShowLead | SetLead | LeadHistory | Help | OpenModal | Invalid


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
    """Internal: a grammar error on the way to an Invalid. `before_advice` is the message without its closing
    advice on double quotes, for when advice on the single quotes the user typed replaces it."""

    def __init__(self, message: str, field: str | None = None, *, before_advice: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.before_advice = before_advice


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


def command_text(command: Command) -> str:
    """The command written out as `/lead ...` text that parses back to it (the audit trail's record of a form or a
    button). Values that could be misread (spaces, `=`, quotes, `null`, a data key named like a lead field) are
    double-quoted with the grammar's backslash escapes."""
    if isinstance(command, AddLead):
        parts = ["add", command.list_ref, command.uid, command.number, str(command.rank)]
        fields: dict[str, str] = {}
        data: dict[str, str | None] = dict(command.data)
    elif isinstance(command, RankLead):
        parts, fields, data = ["rank", command.list_ref, command.lead_ref, str(command.rank)], {}, {}
    elif isinstance(command, SetLead):
        parts = ["set", command.list_ref, command.lead_ref]
        named = ((FIELD_UID, command.uid), (FIELD_NUMBER, command.number), (FIELD_RANK, command.rank))
        fields = {name: str(value) for name, value in named if value is not None}
        data = dict(command.data)
    else:
        name = "history" if isinstance(command, LeadHistory) else "show"
        parts, fields, data = [name, command.list_ref, command.lead_ref], {}, {}
    words = [parts[0], *(_written(part) for part in parts[1:])]
    words += [f"{name}={_written(value)}" for name, value in fields.items()]
    words += [f"{_written(key, key=True)}={_NULL if value is None else _written(value)}" for key, value in data.items()]
    return "/lead " + " ".join(words)


def _written(value: str, *, key: bool = False) -> str:
    plain = (
        value
        and not any(char.isspace() or char in "=\"'\\" or not char.isprintable() for char in value)
        and value.lower() != _NULL
        and value not in _HELP_WORDS
        and not (key and (value.strip().lower() in _SET_FIELDS or is_read_only_field(value)))
    )
    if plain:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
        result = _parse_help(args)
        return result if isinstance(result, Help) else _with_single_quote_hint(result, args)
    if word not in _POSITIONALS:
        message, suggestion = _unknown_command(head.text)
        return _with_single_quote_hint(Invalid(message, USAGE[suggestion] if suggestion else ALL_USAGE), args)
    if not args:
        return OpenModal(word)
    if len(args) == 1 and _is_help_word(args[0]):
        return Help(word)
    try:
        return _PARSERS[word](args, default_region)
    except (FieldError, _Refusal) as error:
        before_advice = error.before_advice if isinstance(error, _Refusal) else None
        return _with_single_quote_hint(_invalid(error.message, word, error.field), args, before_advice)


def _with_single_quote_hint(result: Invalid, args: list[Token], before_advice: str | None = None) -> Invalid:
    """`result`, told to use double quotes when the text has a span in single quotes (which group nothing here):
    in place of the message's own advice on quotes when it has one, else as one more sentence."""
    hint = _single_quote_hint(args)
    if hint is None:
        return result
    if before_advice:
        message = f"{before_advice}; use double quotes, not single: {hint}."
    else:
        message = f"{result.message} Use double quotes, not single: {hint}."
    return Invalid(message, result.usage, result.field, result.subcommand)


def _is_help_word(token: Token) -> bool:
    """`help` or `?` typed as a word (a quoted "help" is a name)."""
    return token.key is None and not token.key_quoted and token.text.strip().lower() in _HELP_WORDS


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


def _unknown_command(typed: str) -> tuple[str, str | None]:
    """The message, and the subcommand it suggests (its usage line is the one to show), if one is close."""
    matches = difflib.get_close_matches(typed[:40].lower(), SUBCOMMANDS, n=1, cutoff=0.6)
    if matches:
        return f"/lead has no command {quote_input(typed)} (did you mean {matches[0]}?).", matches[0]
    return f"/lead has no command {quote_input(typed)}; use add, rank, show, set, history or help.", None


def _single_quote_hint(tokens: list[Token]) -> str | None:
    """`"Spring leads"` when the text has `'Spring leads'` (or `key='a b'`) spread over several tokens: single
    quotes are ordinary characters here (O'Brien), so they grouped nothing. The first such span, or None."""
    start: int | None = None
    prefix = ""
    for index, token in enumerate(tokens):
        if start is not None and token.key is None and token.text[-1:] in _SINGLE_CLOSE:
            words = [_opening_text(tokens[start])[1:], *(t.text for t in tokens[start + 1 : index]), token.text[:-1]]
            return prefix + _double_quoted(" ".join(words).strip())
        if start is not None and token.key is None:
            continue
        start = None
        opening = _opening_text(token)
        if opening[:1] in _SINGLE_OPEN and not (len(opening) > 1 and opening[-1] in _SINGLE_CLOSE):
            start = index
            prefix = "" if token.key is None else _shown_key(token.key, token.key_quoted) + "="
    return None


def _opening_text(token: Token) -> str:
    """What a single quote would open in this token: the word itself, or the unquoted value of a pair."""
    if token.key is None:
        return "" if token.key_quoted else token.text
    return "" if token.value_quoted else token.value or ""


def _double_quoted(text: str) -> str:
    shown = shorten(text)
    return '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _shown_key(key: str, quoted: bool) -> str:
    """A key the way to type it: in double quotes when it was, or when it must be to stay one key."""
    if quoted or not key or any(ch.isspace() or ch in '"=' for ch in key):
        return _double_quoted(key)
    return key


def _shown_value(value: str, quoted: bool) -> str:
    if quoted or not value or any(ch.isspace() or ch == '"' for ch in value):
        return _double_quoted(value)
    return value


def _read_only(key: str, value: str, value_quoted: bool) -> FieldError:
    return read_only_error(key, f"{_double_quoted(key.strip())}={_shown_value(value, value_quoted)}")


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
    hint = f"did you mean {matches[0]}?" if matches else "topics are add, rank, show, set, history and help"
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
    head = (
        f"{subcommand} takes {wanted} arguments ({' '.join(f'<{name}>' for name in names)}) but got {leading}, "
        f"so {quote_input(args[wanted].text)} is one too many"
    )
    return _Refusal(f"{head}; {_QUOTE_HINT}.", before_advice=head)


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


def _bare(subcommand: str, tokens: list[Token], index: int) -> _Refusal:
    """A word without '=' where a key=value change belongs. After a pair it is most likely the rest of that pair's
    value typed without quotes (address=martin mendalde); otherwise a key without its value."""
    token = tokens[index]
    previous = tokens[index - 1] if index > 0 else None
    if previous is not None and previous.key and not _is_set_field(subcommand, previous, (FIELD_RANK, FIELD_NUMBER)):
        end = index
        while end < len(tokens) and tokens[end].key is None:
            end += 1
        value = " ".join([previous.value or "", *(word.text for word in tokens[index:end])])
        head = f"{quote_input(token.text)} has no '='"
        return _Refusal(
            f"{head}; put values with spaces in double quotes: "
            f"{_shown_key(previous.key, previous.key_quoted)}={_double_quoted(value)}.",
            FIELD_DATA,
            before_advice=head,
        )
    quoted = token.key_quoted or is_read_only_field(token.text) or _is_set_field(subcommand, token, _SET_FIELDS, True)
    key = _shown_key(token.text, quoted)
    if subcommand == "set":
        return _Refusal(
            f"{quote_input(token.text)} is not a key=value change; to delete a data variable write {key}=null, to "
            f"set one write {key}=value.",
            FIELD_DATA,
        )
    return _Refusal(
        f"{quote_input(token.text)} is not a key=value pair; to set a data variable write {key}=value.", FIELD_DATA
    )


def _is_set_field(subcommand: str, token: Token, names: tuple[str, ...], bare: bool = False) -> bool:
    """Whether `set` reads the token's unquoted key (or, with `bare`, the word itself) as one of the fields."""
    if subcommand != "set" or token.key_quoted:
        return False
    name = token.text if bare else token.key
    return name is not None and name.strip().lower() in names


def _check_writable(token: Token) -> None:
    """Refuse an unquoted key naming a lead field only babelforce sets: it would become a data variable and leave
    the field (say the dial status) as it was, the opposite of what was meant."""
    if token.key is not None and not token.key_quoted and is_read_only_field(token.key):
        raise _read_only(token.key, token.value or "", token.value_quoted)


def _spaced_equals(subcommand: str, args: list[Token]) -> _Refusal | FieldError | None:
    """`rank = 5`, `rank= 5` or `rank =5`: a key=value split by spaces, which would otherwise read as extra
    arguments. Only where a key=value belongs (after the positionals), so `set A l1 =x` stays an empty key."""
    wanted = len(_POSITIONALS[subcommand])

    def is_key(position: int) -> bool:
        if position < wanted or position >= len(args) or args[position].key is not None:
            return False
        # add's positionals may run longer (a number typed with spaces); its digits are never taken for a key.
        return subcommand != "add" or not _is_number_piece(args[position], first=False)

    def value_at(position: int) -> Token | None:
        return args[position] if position < len(args) and args[position].key is None else None

    for index, token in enumerate(args):
        if token.key is None or token.value_quoted:
            continue
        if token.key == "" and not token.key_quoted and is_key(index - 1):
            key = args[index - 1]
            if token.value == "":  # a lone '='
                after = value_at(index + 1)
                value, value_quoted = (after.text, after.key_quoted) if after else (None, False)
                return _spaced(key.text, key.key_quoted, value, value_quoted)
            return _spaced(key.text, key.key_quoted, token.value or "", token.value_quoted)
        if token.key and token.value == "" and index >= wanted and (after := value_at(index + 1)):
            return _spaced(token.key, token.key_quoted, after.text, after.key_quoted)
    return None


def _spaced(key: str, key_quoted: bool, value: str | None, value_quoted: bool) -> _Refusal | FieldError:
    if not key_quoted and is_read_only_field(key):
        return _read_only(key, value or "", value_quoted)
    shown = "value" if value is None else _shown_value(value, value_quoted)
    return _Refusal(f"no spaces around '=': write {_shown_key(key, key_quoted)}={shown}.", FIELD_DATA)


def _data_pairs(subcommand: str, pairs: list[Token], *, allow_delete: bool) -> dict[str, str | None]:
    data: dict[str, str | None] = {}
    for index, token in enumerate(pairs):
        if token.key is None:
            raise _bare(subcommand, pairs, index)
        _check_writable(token)
        key, value = parse_data_pair(token.key, _value_or_delete(token), allow_delete=allow_delete)
        if key in data:
            raise FieldError(FIELD_DATA, f"data key {quote_input(key)} is given twice.")
        data[key] = value
    return data


def _parse_add(args: list[Token], region: str | None) -> AddLead:
    """An unquoted number typed with spaces (`+49 151 000 000 40`) is taken whole: every token between the uid
    and the rank looks like a piece of it, and no valid command reads otherwise."""
    if refusal := _spaced_equals("add", args):
        raise refusal
    leading = _count_leading(args)
    if (stray := _add_stray_word(args, leading, region)) is not None:
        raise _bare("add", args, stray)
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


def _add_stray_word(args: list[Token], leading: int, region: str | None) -> int | None:
    """The index of a word typed after a complete add (`add L u1 +4916098119998 5 city`), which belongs in the
    data part, not among the positionals; None when no reading of the positionals is complete before a word."""
    if leading <= len(_POSITIONALS["add"]) or not args[0].text.strip() or not _is_valid(parse_uid, args[1].text):
        return None
    for rank_at in range(3, min(leading - 1, 3 + _MAX_NUMBER_PIECES)):
        # The number is args[2:rank_at]: one token, or the pieces of one typed with spaces.
        if rank_at > 3 and not (
            _is_number_piece(args[2], first=True) and _is_number_piece(args[rank_at - 1], first=False)
        ):
            return None
        if _is_number_piece(args[rank_at + 1], first=False):  # digits: still the number or the rank
            continue
        number = " ".join(piece.text for piece in args[2:rank_at])
        if _is_number(number, region) and _is_valid(parse_rank, args[rank_at].text):
            return rank_at + 1
        return None
    return None


def _is_valid(check: Callable[[str], object], text: str) -> bool:
    try:
        check(text)
    except FieldError:
        return False
    return True


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


def _list_and_lead(subcommand: str, args: list[Token]) -> tuple[str, str]:
    """The two positionals of show and history, which take nothing else."""
    (list_token, lead_token), extra = _split_arguments(subcommand, args)
    if extra:
        raise _Refusal(f"{subcommand} takes no key=value pairs; {quote_input(extra[0].text)} is one too many.")
    return _ref(list_token, FIELD_LIST), _ref(lead_token, FIELD_LEAD)


def _parse_show(args: list[Token], region: str | None) -> ShowLead:
    return ShowLead(*_list_and_lead("show", args))


def _parse_history(args: list[Token], region: str | None) -> LeadHistory:
    return LeadHistory(*_list_and_lead("history", args))


def _parse_set(args: list[Token], region: str | None) -> SetLead:
    if refusal := _spaced_equals("set", args):
        raise refusal
    if _count_leading(args) == 3 and (args[0].key_quoted or (len(args) == 3 and _WORD.fullmatch(args[2].text))):
        # `set "Spring leads" lead-5 city`: a key without its value rather than a list name with spaces (the list
        # is quoted, or nothing follows that could be the changes and the word looks like a key, not a lead).
        _ref(args[0], FIELD_LIST)
        _ref(args[1], FIELD_LEAD)
        raise _bare("set", args, 2)
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
        if token.key is None:
            raise _bare("set", changes, index - 1)
        name = token.key.strip().lower() if not token.key_quoted else None
        if name not in _SET_FIELDS:
            _check_writable(token)
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
                    raise _bare("set", changes, given) from None
                raise
        else:
            rank = parse_rank(value)
    data = _data_pairs("set", data_tokens, allow_delete=True)
    return SetLead(list_ref, lead_ref, uid=uid, number=number, rank=rank, data=data)


_PARSERS = {
    "add": _parse_add,
    "rank": _parse_rank,
    "show": _parse_show,
    "set": _parse_set,
    "history": _parse_history,
}
