"""The /lead command text: tokenizer and parser into typed commands.

`parse` never raises: anything it cannot read becomes an `Invalid` with one sentence naming what is wrong and
the usage line to show, so the bot can answer every input within Slack's 3 seconds. Pure: no I/O, no logging.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass

from . import registry
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
    quote_input,
    read_only_error,
    shorten,
)

_HELP_WORDS = frozenset({"help", "?"})
SET_FIELDS = (FIELD_UID, FIELD_NUMBER, FIELD_RANK)
NULL = "null"
_ARGUMENTS = {  # what each positional is, for "needs <x>" messages
    FIELD_LIST: "the list's name or id",
    FIELD_LEAD: "the lead's uid, id or number",
    FIELD_UID: "the new lead's own id",
    FIELD_NUMBER: "its phone number",
    FIELD_RANK: "a whole number",
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
WORD = re.compile(r"[^\W\d]\w*")  # a plain word, as data keys usually are (lead refs tend to have - or digits first)
MAX_NUMBER_PIECES = 20  # a phone number typed with spaces never has more groups than digits (at most 20)


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


ParseResult = registry.TargetsList | Help | OpenModal | Invalid


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


class Refusal(Exception):
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


def command_text(command: object) -> str:
    """The command written out as `/lead ...` text that parses back to it (the audit trail's record of a form or a
    button). Values that could be misread (spaces, `=`, quotes, `null`, a data key named like a lead field) are
    double-quoted with the grammar's backslash escapes."""
    spec = registry.of(command)
    positionals, fields, data = spec.written(command)
    words = [spec.name, *(_written(part) for part in positionals)]
    words += [f"{name}={_written(value)}" for name, value in fields.items()]
    words += [f"{_written(key, key=True)}={NULL if value is None else _written(value)}" for key, value in data.items()]
    return "/lead " + " ".join(words)


def _written(value: str, *, key: bool = False) -> str:
    plain = (
        value
        and not any(char.isspace() or char in "=\"'\\" or not char.isprintable() for char in value)
        and value.lower() != NULL
        and value not in _HELP_WORDS
        and not (key and (value.strip().lower() in SET_FIELDS or is_read_only_field(value)))
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
    spec = registry.find(word)
    if spec is None:
        message, suggestion = _unknown_command(head.text)
        return _with_single_quote_hint(Invalid(message, registry.usage(suggestion)), args)
    if not args and spec.form is not None:  # a subcommand without a form reads its bare name itself
        return OpenModal(word)
    if len(args) == 1 and _is_help_word(args[0]):
        return Help(word)
    try:
        return spec.parse(args, default_region)
    except (FieldError, Refusal) as error:
        before_advice = error.before_advice if isinstance(error, Refusal) else None
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
    return Invalid(message, registry.usage(subcommand), field, subcommand)


def _guess_subcommand(text: str) -> str | None:
    """The subcommand of text that could not be tokenized, when its first word names one, to show its usage."""
    words = _normalize(text).split(maxsplit=2)
    if words and words[0].lower() == "/lead":
        words = words[1:]
    word = words[0].strip('"').lower() if words else ""
    if word in _HELP_WORDS:
        return "help"
    return word if registry.find(word) is not None else None


def _unknown_command(typed: str) -> tuple[str, str | None]:
    """The message, and the subcommand it suggests (its usage line is the one to show), if one is close."""
    names = registry.names()
    matches = difflib.get_close_matches(typed[:40].lower(), names, n=1, cutoff=0.6)
    if matches:
        return f"/lead has no command {quote_input(typed)} (did you mean {matches[0]}?).", matches[0]
    return f"/lead has no command {quote_input(typed)}; use {_listed(names, 'or')}.", None


def _listed(names: tuple[str, ...], last: str) -> str:
    """`add, rank, show or help`."""
    return ", ".join(names[:-1]) + f" {last} {names[-1]}" if len(names) > 1 else names[0]


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
            f"help takes at most one topic; {quote_input(args[1].text)} is one too many.",
            registry.usage(None),
            None,
            "help",
        )
    topic = args[0].text.strip().lower()
    if topic in _HELP_WORDS:
        return Help("help")
    names = registry.names()
    if topic in names:
        return Help(topic)
    matches = difflib.get_close_matches(topic[:40], names, n=1, cutoff=0.6)
    hint = f"did you mean {matches[0]}?" if matches else f"topics are {_listed(names, 'and')}"
    return Invalid(f"there is no help on {quote_input(args[0].text)} ({hint}).", registry.usage(None), None, "help")


def count_leading(args: list[Token]) -> int:
    """How many tokens come before the first key=value one."""
    leading = 0
    while leading < len(args) and args[leading].key is None:
        leading += 1
    return leading


def split_arguments(subcommand: str, args: list[Token]) -> tuple[list[Token], list[Token]]:
    """The positional tokens and the key=value tokens after them, or a refusal saying which one is missing or
    which is one too many."""
    names = registry.get(subcommand).positionals
    wanted = len(names)
    leading = count_leading(args)
    if leading < wanted:
        raise _missing(subcommand, names, leading, args[leading] if leading < len(args) else None)
    if leading > wanted:
        raise too_many(subcommand, args, leading)
    return args[:wanted], args[wanted:]


def too_many(subcommand: str, args: list[Token], leading: int) -> Refusal:
    names = registry.get(subcommand).positionals
    wanted = len(names)
    head = (
        f"{subcommand} takes {wanted} arguments ({' '.join(f'<{name}>' for name in names)}) but got {leading}, "
        f"so {quote_input(args[wanted].text)} is one too many"
    )
    return Refusal(f"{head}; {_QUOTE_HINT}.", before_advice=head)


def is_number_piece(token: Token, *, first: bool) -> bool:
    if token.key is not None or token.key_quoted:
        return False
    return bool((_NUMBER_HEAD if first else _NUMBER_PIECE).fullmatch(token.text))


def _missing(subcommand: str, names: tuple[str, ...], index: int, got: Token | None) -> Refusal:
    name = names[index]
    where = "" if index == 0 else f" after the {names[index - 1]}"
    if got is None:
        return Refusal(f"{subcommand} needs <{name}> ({_argument(name)}){where}.", name)
    if not got.key_quoted and (got.key or "").strip().lower() == name:
        return Refusal(f"{subcommand} takes <{name}>{where} by position, without {quote_input(name + '=')}.", name)
    return Refusal(
        f"{subcommand} needs <{name}> ({_argument(name)}){where} but got the key=value {quote_input(got.text)} "
        f"(put it in double quotes if that is the {name} itself).",
        name,
    )


def _argument(name: str) -> str:
    """What a positional is, for "needs <x> (...)" messages; a subcommand's own field names itself."""
    return _ARGUMENTS.get(name, f"its {name}")


def ref(token: Token, name: str) -> str:
    ref = token.text.strip()
    if not ref:
        raise Refusal(f"{name} must not be empty; give {_argument(name)}.", name)
    return ref


def value_or_delete(token: Token) -> str | None:
    """The token's value, or None for an unquoted `null` (delete)."""
    return None if token.value == NULL and not token.value_quoted else (token.value or "")


def bare(subcommand: str, tokens: list[Token], index: int) -> Refusal:
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
        return Refusal(
            f"{head}; put values with spaces in double quotes: "
            f"{_shown_key(previous.key, previous.key_quoted)}={_double_quoted(value)}.",
            FIELD_DATA,
            before_advice=head,
        )
    quoted = token.key_quoted or is_read_only_field(token.text) or _is_set_field(subcommand, token, SET_FIELDS, True)
    key = _shown_key(token.text, quoted)
    if subcommand == "set":
        return Refusal(
            f"{quote_input(token.text)} is not a key=value change; to delete a data variable write {key}=null, to "
            f"set one write {key}=value.",
            FIELD_DATA,
        )
    return Refusal(
        f"{quote_input(token.text)} is not a key=value pair; to set a data variable write {key}=value.", FIELD_DATA
    )


def _is_set_field(subcommand: str, token: Token, names: tuple[str, ...], bare: bool = False) -> bool:
    """Whether `set` reads the token's unquoted key (or, with `bare`, the word itself) as one of the fields."""
    if subcommand != "set" or token.key_quoted:
        return False
    name = token.text if bare else token.key
    return name is not None and name.strip().lower() in names


def check_writable(token: Token) -> None:
    """Refuse an unquoted key naming a lead field only babelforce sets: it would become a data variable and leave
    the field (say the dial status) as it was, the opposite of what was meant."""
    if token.key is not None and not token.key_quoted and is_read_only_field(token.key):
        raise _read_only(token.key, token.value or "", token.value_quoted)


def spaced_equals(subcommand: str, args: list[Token]) -> Refusal | FieldError | None:
    """`rank = 5`, `rank= 5` or `rank =5`: a key=value split by spaces, which would otherwise read as extra
    arguments. Only where a key=value belongs (after the positionals), so `set A l1 =x` stays an empty key."""
    wanted = len(registry.get(subcommand).positionals)

    def is_key(position: int) -> bool:
        if position < wanted or position >= len(args) or args[position].key is not None:
            return False
        # add's positionals may run longer (a number typed with spaces); its digits are never taken for a key.
        return subcommand != "add" or not is_number_piece(args[position], first=False)

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


def _spaced(key: str, key_quoted: bool, value: str | None, value_quoted: bool) -> Refusal | FieldError:
    if not key_quoted and is_read_only_field(key):
        return _read_only(key, value or "", value_quoted)
    shown = "value" if value is None else _shown_value(value, value_quoted)
    return Refusal(f"no spaces around '=': write {_shown_key(key, key_quoted)}={shown}.", FIELD_DATA)


def data_pairs(subcommand: str, pairs: list[Token], *, allow_delete: bool) -> dict[str, str | None]:
    data: dict[str, str | None] = {}
    for index, token in enumerate(pairs):
        if token.key is None:
            raise bare(subcommand, pairs, index)
        check_writable(token)
        key, value = parse_data_pair(token.key, value_or_delete(token), allow_delete=allow_delete)
        if key in data:
            raise FieldError(FIELD_DATA, f"data key {quote_input(key)} is given twice.")
        data[key] = value
    return data


def list_and_lead(subcommand: str, args: list[Token]) -> tuple[str, str]:
    """The two positionals of a subcommand that takes a list and a lead and nothing else (show, history)."""
    (list_token, lead_token), extra = split_arguments(subcommand, args)
    if extra:
        raise Refusal(f"{subcommand} takes no key=value pairs; {quote_input(extra[0].text)} is one too many.")
    return ref(list_token, FIELD_LIST), ref(lead_token, FIELD_LEAD)


def is_valid(check: Callable[[str], object], text: str) -> bool:
    try:
        check(text)
    except FieldError:
        return False
    return True


def is_number(text: str, region: str | None) -> bool:
    return is_valid(lambda typed: parse_number(typed, region), text)
