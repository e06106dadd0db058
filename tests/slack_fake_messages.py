"""Messages as the fake keeps them, and what Slack rejects in one (``invalid_blocks`` and co).

Block Kit rules come from slack_sdk's own models (``Block.parse`` then ``to_dict``, which
runs every nested validator); the few limits slack_sdk does not check are added here.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from tests.slack_fake_requests import APP_ID, BOT_ID, BOT_USER_ID, TEAM_ID

MAX_BLOCKS, MAX_TEXT, MAX_FIELD_TEXT = 50, 40_000, 2_000


@dataclass(frozen=True)
class Message:
    """The current state of one message as users see it.

    ``updates`` holds the params of each accepted ``chat.update`` (or replacing
    ``response_url`` post), oldest first. ``ephemeral_to`` is the only user who sees an
    ephemeral message; ``None`` for an ordinary channel message.
    """

    channel: str
    ts: str
    text: str | None
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None = None
    ephemeral_to: str | None = None
    deleted: bool = False
    updates: tuple[dict[str, Any], ...] = ()


class SlackError(Exception):
    """A refusal answered as ``{"ok": false, "error": code, **extra}``."""

    def __init__(self, code: str, **extra: Any):
        super().__init__(code)
        self.code, self.extra = code, extra


def check_message(params: dict[str, Any]) -> tuple[str | None, list | None]:
    """The message's ``(text, blocks)``, or raise ``SlackError`` with Slack's code.

    ``blocks`` may be a list or a JSON string (form-encoded calls). Codes:
    ``invalid_blocks_format`` (not a JSON array), ``invalid_blocks`` (with ``errors``),
    ``msg_too_long`` (text over 40,000 chars), ``no_text`` (neither text nor blocks).
    """
    text, blocks = params.get("text"), params.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except json.JSONDecodeError:
            raise SlackError("invalid_blocks_format") from None
    if blocks is not None and not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format")
    if blocks:
        errors = block_errors(blocks)
        if errors:
            raise SlackError(
                "invalid_blocks", errors=errors, response_metadata={"messages": [f"[ERROR] {e}" for e in errors]}
            )
    if text is not None and len(text) > MAX_TEXT:
        raise SlackError("msg_too_long")
    if not text and not blocks:
        raise SlackError("no_text")
    return text, blocks


def block_errors(blocks: list[Any]) -> list[str]:
    """Slack-style error strings (``"... [json-pointer:/blocks/0/text]"``) for ``blocks``.

    Each block must parse with slack_sdk's models, pass their validators (run recursively
    by ``to_dict``) and render back to exactly what was sent: a key slack_sdk drops is a
    key Slack does not know. On top of slack_sdk: section field text at most 2,000 chars,
    header text plain_text, block_ids unique, a button's ``confirm`` complete and plain_text.
    """
    errors = [f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"] if len(blocks) > MAX_BLOCKS else []
    block_ids: set[str] = set()
    for i, raw in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(raw, dict):
            errors.append(f"expected an object [json-pointer:{where}]")
            continue
        try:
            block = Block.parse(copy.deepcopy(raw))
            rendered = block.to_dict() if block is not None else None
        except SlackObjectFormationError as invalid:
            errors.append(f"{invalid} [json-pointer:{where}]")
            continue
        except (TypeError, ValueError, KeyError, AttributeError) as malformed:
            errors.append(f"malformed block ({malformed}) [json-pointer:{where}]")
            continue
        if rendered is None:
            errors.append(f"unsupported type {raw.get('type')!r} [json-pointer:{where}/type]")
            continue
        errors += _beyond_slack_sdk(raw, where, block_ids)
        if rendered != raw:
            errors.append(f"invalid or unknown field [json-pointer:{where}{_first_difference(raw, rendered)}]")
    return errors


def _beyond_slack_sdk(raw: dict[str, Any], where: str, block_ids: set[str]) -> list[str]:
    """Slack's limits that slack_sdk 3.48's models do not check."""
    errors = []
    for j, fld in enumerate(raw.get("fields") or []):
        if isinstance(fld, dict) and len(str(fld.get("text", ""))) > MAX_FIELD_TEXT:
            errors.append(f"must be less than {MAX_FIELD_TEXT + 1} characters [json-pointer:{where}/fields/{j}/text]")
    text = raw.get("text")
    if raw.get("type") == "header" and not (isinstance(text, dict) and text.get("type") == "plain_text"):
        errors.append(f"must be plain_text [json-pointer:{where}/text/type]")
    elements = raw.get("elements") if raw.get("type") == "actions" else [raw.get("accessory")]
    for j, element in enumerate(elements or []):
        if isinstance(element, dict) and "confirm" in element:
            place = f"{where}/elements/{j}" if raw.get("type") == "actions" else f"{where}/accessory"
            errors += _confirm_errors(element["confirm"], f"{place}/confirm")
    if "block_id" in raw:
        if raw["block_id"] in block_ids:
            errors.append(f"duplicate block_id {raw['block_id']!r} [json-pointer:{where}/block_id]")
        block_ids.add(raw["block_id"])
    return errors


CONFIRM_PARTS = {"title": 100, "text": 300, "confirm": 30, "deny": 30}


def _confirm_errors(confirm: Any, where: str) -> list[str]:
    """A confirmation dialog as Slack requires it: title, text, confirm and deny all present, each
    a plain_text object with text (≤ 100, 300, 30, 30 characters); style primary or danger."""
    if not isinstance(confirm, dict):
        return [f"expected an object [json-pointer:{where}]"]
    errors = []
    for part, limit in CONFIRM_PARTS.items():
        value = confirm.get(part)
        if not isinstance(value, dict):
            errors.append(f"missing required field: {part} [json-pointer:{where}/{part}]")
        elif value.get("type") != "plain_text":
            errors.append(f"must be plain_text [json-pointer:{where}/{part}/type]")
        elif not isinstance(value.get("text"), str) or not 0 < len(value["text"]) <= limit:
            errors.append(f"must be 1 to {limit} characters [json-pointer:{where}/{part}/text]")
    if confirm.get("style", "danger") not in ("primary", "danger"):
        errors.append(f"must be primary or danger [json-pointer:{where}/style]")
    return errors


def _first_difference(sent: Any, rendered: Any, path: str = "") -> str:
    if isinstance(sent, dict) and isinstance(rendered, dict):
        for key in sorted(set(sent) | set(rendered)):
            if sent.get(key) != rendered.get(key):
                return _first_difference(sent.get(key), rendered.get(key), f"{path}/{key}")
    if isinstance(sent, list) and isinstance(rendered, list) and len(sent) == len(rendered):
        for i, (a, b) in enumerate(zip(sent, rendered)):
            if a != b:
                return _first_difference(a, b, f"{path}/{i}")
    return path


def as_slack_message(message: Message) -> dict[str, Any]:
    """The message as the Web API echoes it back (``message`` in chat.postMessage's answer)."""
    body = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "team": TEAM_ID,
        "ts": message.ts,
        "text": message.text or "",
    }
    if message.blocks:
        body["blocks"] = message.blocks
    if message.thread_ts:
        body["thread_ts"] = message.thread_ts
    return body
