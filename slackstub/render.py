"""Block Kit as readable plain text, for the local console (and for eyeballing test failures).

Best effort and never raising: an unknown block renders as `[<type> block]`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

DIVIDER = "─" * 40

EMOJI = {
    "warning": "⚠",
    "white_check_mark": "✅",
    "hourglass_flowing_sand": "⏳",
    "x": "❌",
    "information_source": "ℹ",
    "arrow_right": "→",
    "telephone_receiver": "📞",
}

_CODE_BLOCK = re.compile(r"```\n?(.*?)\n?```", re.DOTALL)
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_ANGLE = re.compile(r"<([^<>\n]+)>")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])")
_EMOJI = re.compile(r":([a-z0-9_+\-]+):")
_FIELD = re.compile(r"^\s*\*([^*\n]+)\*\s*\n(.*)$", re.DOTALL)
_PLACEHOLDER = "\x00{}\x00"
_PLACEHOLDER_RE = re.compile("\x00(\\d+)\x00")


def emojize(text: str) -> str:
    return _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _angle(match: re.Match[str]) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return f"@{label}" if label else target
    if target.startswith("#"):
        return f"#{label}" if label else target
    if target.startswith("!date^"):
        return label or _date_without_fallback(target)
    if target.startswith("!"):
        if label:
            return label
        return "@" + target[1:].split("^", 1)[0]
    return label or target


def _date_without_fallback(target: str) -> str:
    """`<!date^unix^tokens>` with no `|fallback`: Slack's docs require the fallback, so this is a bot's mistake;
    show the moment in UTC, marked, rather than the raw syntax. Slack itself would show each viewer their own time
    (https://docs.slack.dev/messaging/formatting-message-text, "Date formatting")."""
    stamp = target.split("^")[1]
    try:
        moment = datetime.fromtimestamp(int(stamp), UTC)
    except (ValueError, OverflowError, OSError):
        return f"[date {stamp}]"
    return f"[date {moment:%Y-%m-%d %H:%M} UTC, no fallback]"


def mrkdwn(text: str) -> str:
    """Slack mrkdwn to plain text: markers dropped (strike as -text-), links to their label, emoji shortcodes
    we know to the character, entities unescaped. Code is kept verbatim."""
    if not text:
        return ""
    codes: list[str] = []

    def stash(match: re.Match[str]) -> str:
        codes.append(match.group(1))
        return _PLACEHOLDER.format(len(codes) - 1)

    out = _CODE_BLOCK.sub(stash, text)
    out = _CODE_SPAN.sub(stash, out)
    out = _ANGLE.sub(_angle, out)
    out = _BOLD.sub(r"\1", out)
    out = _ITALIC.sub(r"\1", out)
    out = _STRIKE.sub(r"-\1-", out)
    out = emojize(out)
    out = _PLACEHOLDER_RE.sub(lambda m: codes[int(m.group(1))], out)
    return _unescape(out)


def text_of(obj: Any) -> str:
    """A text object (plain_text or mrkdwn) as plain text; a bare string is taken as mrkdwn."""
    if isinstance(obj, str):
        return mrkdwn(obj)
    if not isinstance(obj, dict):
        return ""
    text = obj.get("text")
    if not isinstance(text, str):
        return ""
    if obj.get("type") == "plain_text":
        return emojize(text)
    return mrkdwn(text)


def _element(element: Any) -> str:
    """An interactive element inline: buttons `[Label]`, selects `<Placeholder ▾>`."""
    if not isinstance(element, dict):
        return ""
    kind = element.get("type", "")
    if kind == "button":
        return f"[{text_of(element.get('text'))}]"
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    if kind == "overflow":
        return "[⋯]"
    if kind.endswith("select") or kind in ("datepicker", "timepicker", "datetimepicker"):
        initial = element.get("initial_option")
        label = text_of(initial.get("text")) if isinstance(initial, dict) else ""
        label = label or text_of(element.get("placeholder")) or kind.replace("_", " ")
        return f"<{label} ▾>"
    if kind in ("checkboxes", "radio_buttons"):
        mark = "☐" if kind == "checkboxes" else "○"
        return "  ".join(f"{mark} {text_of(o.get('text'))}" for o in element.get("options") or [])
    if kind in ("plain_text_input", "number_input", "email_text_input", "url_text_input", "rich_text_input"):
        placeholder = text_of(element.get("placeholder"))
        return f"[{placeholder or '…'}]"
    return f"[{kind or 'element'}]"


def _fields(fields: list[Any]) -> list[str]:
    pairs: list[tuple[str | None, str]] = []
    for field in fields:
        raw = field.get("text", "") if isinstance(field, dict) else str(field)
        match = _FIELD.match(raw) if isinstance(field, dict) and field.get("type") == "mrkdwn" else None
        if match:
            pairs.append((mrkdwn(match.group(1)).strip(), mrkdwn(match.group(2))))
        else:
            pairs.append((None, text_of(field)))
    width = max((len(label) for label, _ in pairs if label is not None), default=0)
    lines: list[str] = []
    for label, value in pairs:
        if label is None:
            lines.append(value)
            continue
        first, *rest = value.split("\n") or [""]
        lines.append(f"{label.ljust(width)}  {first}".rstrip())
        lines.extend(" " * (width + 2) + more for more in rest)
    return lines


def _rich_text_elements(elements: list[Any]) -> str:
    out: list[str] = []
    for element in elements:
        if not isinstance(element, dict):
            continue
        kind = element.get("type")
        if kind == "text":
            out.append(element.get("text", ""))
        elif kind == "link":
            out.append(element.get("text") or element.get("url", ""))
        elif kind == "emoji":
            name = element.get("name", "")
            out.append(EMOJI.get(name, f":{name}:"))
        elif kind == "user":
            out.append(f"@{element.get('user_id', '')}")
        elif kind == "channel":
            out.append(f"#{element.get('channel_id', '')}")
        elif kind == "usergroup":
            out.append(f"@{element.get('usergroup_id', '')}")
        elif kind == "broadcast":
            out.append(f"@{element.get('range', '')}")
        elif kind == "date":
            out.append(element.get("fallback") or str(element.get("timestamp", "")))
        else:
            out.append(element.get("text", ""))
    return "".join(out)


def _rich_text(block: dict[str, Any]) -> str:
    parts: list[str] = []
    for section in block.get("elements") or []:
        if not isinstance(section, dict):
            continue
        kind = section.get("type")
        if kind == "rich_text_list":
            ordered = section.get("style") == "ordered"
            indent = "  " * int(section.get("indent", 0) or 0)
            for i, item in enumerate(section.get("elements") or [], 1):
                bullet = f"{i}." if ordered else "•"
                parts.append(f"{indent}{bullet} {_rich_text_elements(item.get('elements') or [])}")
        elif kind == "rich_text_quote":
            text = _rich_text_elements(section.get("elements") or [])
            parts.append("\n".join(f"> {line}" for line in text.split("\n")))
        else:  # rich_text_section, rich_text_preformatted
            parts.append(_rich_text_elements(section.get("elements") or []))
    return "\n".join(parts).rstrip("\n")


def render_block(block: Any) -> str:
    """One block as text (possibly several lines)."""
    try:
        return _render_block(block)
    except Exception:  # noqa: BLE001 - a console must show something for whatever the bot sends
        kind = block.get("type", "unknown") if isinstance(block, dict) else type(block).__name__
        return f"[{kind} block]"


def _render_block(block: Any) -> str:
    if not isinstance(block, dict):
        return "[unknown block]"
    kind = block.get("type")
    if kind == "header":
        text = text_of(block.get("text"))
        return f"{text}\n{'=' * len(text)}"
    if kind == "section":
        lines: list[str] = []
        if block.get("text"):
            lines.append(text_of(block["text"]))
        if block.get("fields"):
            lines.extend(_fields(block["fields"]))
        if isinstance(block.get("accessory"), dict):
            lines.append(_element(block["accessory"]))
        return "\n".join(lines)
    if kind == "context":
        items = [e for e in block.get("elements") or [] if isinstance(e, dict)]
        return "\n".join(f"  · {_element(e) if e.get('type') == 'image' else text_of(e)}" for e in items)
    if kind == "divider":
        return DIVIDER
    if kind == "actions":
        return "  ".join(_element(e) for e in block.get("elements") or [])
    if kind == "image":
        return f"[image: {block.get('alt_text', '')}]"
    if kind == "rich_text":
        return _rich_text(block)
    if kind == "markdown":
        return str(block.get("text", ""))
    if kind == "input":
        label = text_of(block.get("label"))
        return f"{label}: {_element(block.get('element'))}"
    return f"[{kind} block]"


def render_blocks(blocks: list[dict[str, Any]]) -> str:
    """Blocks as text, one after another."""
    return "\n".join(render_block(block) for block in blocks or [])


def render_message(payload: dict[str, Any]) -> str:
    """A message payload (chat.postMessage arguments or a response_url post) as text: its blocks, else its text,
    followed by notes on how Slack shows it."""
    blocks = payload.get("blocks")
    if isinstance(blocks, list) and blocks:
        body = render_blocks(blocks)
    else:
        text = payload.get("text") or ""
        body = mrkdwn(text) if payload.get("mrkdwn", True) is not False else text
    attachments = payload.get("attachments")
    if isinstance(attachments, list):
        for attachment in attachments:
            if not isinstance(attachment, dict):
                continue
            inner = (
                render_blocks(attachment["blocks"])
                if attachment.get("blocks")
                else mrkdwn(attachment.get("text") or "")
            )
            if inner:
                body += ("\n" if body else "") + "\n".join(f"│ {line}" for line in inner.split("\n"))
    notes = []
    if payload.get("delete_original") is True:
        notes.append("(deletes the previous message)")
    if payload.get("replace_original") is True:
        notes.append("(replaces the previous message)")
    if payload.get("response_type") == "in_channel":
        notes.append("(visible to everyone in the channel)")
    return "\n".join([body, *notes]) if notes else body


def render_view(view: dict[str, Any]) -> str:
    """A modal or home view as text: its title, then its non-input blocks."""
    title = text_of(view.get("title"))
    blocks = [b for b in view.get("blocks") or [] if not (isinstance(b, dict) and b.get("type") == "input")]
    body = render_blocks(blocks)
    heading = f"{title}\n{'=' * len(title)}" if title else ""
    return "\n".join(part for part in (heading, body) if part)
