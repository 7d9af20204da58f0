"""The conversation, in memory only, with no I/O: the seed's envelope on the data channel.

Wire frames (JSON text on the reliable ordered `chat` channel):
  {"type": "message", "message_id", "encrypted", "signature", "timestamp"}
  {"type": "ack", "message_id"}                 delivered
  {"type": "reject", "message_id", "code"}      refused by the receiver
  {"type": "delete", "message_id"}              delete for both (own messages only)
  {"type": "end"}                               the peer ended the session
`encrypted` is AES-256-GCM under the sender's chat key (the message id is the
associated data); `signature` is SHA-256 of the plaintext, checked on receipt.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from orbitcore.errors import Refusal

from .crypto import SealError, SessionKeys, open_box, seal, signature


class Status(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


class ChatError(Refusal):
    """Something the user asked of the chat that cannot be done, and why."""


@dataclass
class ChatMessage:
    message_id: str
    author: str  # "me" or "peer"
    text: str
    timestamp: int
    status: Status
    deleted: bool = False

    def public(self) -> dict[str, Any]:
        shown = asdict(self)
        shown["status"] = self.status.value
        if self.deleted:
            shown["text"] = ""
        return shown


@dataclass(frozen=True)
class Send:
    """A frame for the peer."""

    frame: dict[str, Any]


@dataclass(frozen=True)
class Notify:
    """An event for the user's UI."""

    event: dict[str, Any]


ChatOutput = Send | Notify


def _aad(message_id: str) -> bytes:
    return f"chatorbit/chat/{message_id}".encode()


class Conversation:
    def __init__(self, keys: SessionKeys, max_message_length: int) -> None:
        self._keys: SessionKeys | None = keys
        self.max_message_length = max_message_length
        self.messages: dict[str, ChatMessage] = {}

    def _check_length(self, text: str) -> None:
        if len(text) > self.max_message_length:
            raise ChatError(
                422,
                "message_too_long",
                f"A message may be at most {self.max_message_length} characters; "
                f"this one has {len(text)}.",
            )

    def compose(self, text: object, now: float) -> tuple[ChatMessage, Send]:
        if self._keys is None:
            raise ChatError(409, "session_ended", "The session has ended.")
        if not isinstance(text, str) or not text.strip():
            raise ChatError(422, "empty_message", "Write something first.")
        self._check_length(text)
        message_id = str(uuid.uuid4())
        message = ChatMessage(message_id, "me", text, int(now), Status.SENT)
        frame = {
            "type": "message",
            "message_id": message_id,
            "encrypted": seal(self._keys.chat_send, text.encode(), _aad(message_id)),
            "signature": signature(text),
            "timestamp": int(now),
        }
        self.messages[message_id] = message
        return message, Send(frame)

    def delete(self, message_id: str) -> list[ChatOutput]:
        message = self.messages.get(message_id)
        if message is None or message.deleted:
            raise ChatError(404, "message_not_found", "No such message.")
        if message.author != "me":
            raise ChatError(
                403, "not_your_message", "Only your own messages can be deleted for both."
            )
        message.deleted = True
        message.text = ""
        return [Send({"type": "delete", "message_id": message_id}), Notify(_deleted(message_id))]

    def handle(self, raw: str) -> list[ChatOutput]:
        """A frame from the peer; bad frames are answered, never crash the session."""
        try:
            frame = json.loads(raw)
        except ValueError:
            return [
                Notify(
                    {"type": "error", "code": "bad_peer_frame", "message": "The peer sent garbage."}
                )
            ]
        if not isinstance(frame, dict) or self._keys is None:
            return []
        kind, message_id = frame.get("type"), frame.get("message_id")
        if kind == "end":
            return [Notify({"type": "peer-ended"})]
        if not isinstance(message_id, str) or not message_id:
            return []
        if kind == "message":
            return self.handle_message(frame, message_id)
        if kind == "ack":
            return self._set_status(message_id, Status.DELIVERED)
        if kind == "reject":
            return self._set_status(message_id, Status.FAILED, frame.get("code"))
        if kind == "delete":
            return self.handle_delete(message_id)
        return []

    def handle_message(self, frame: dict[str, Any], message_id: str) -> list[ChatOutput]:
        assert self._keys is not None
        if message_id in self.messages:
            return [Send({"type": "ack", "message_id": message_id})]  # a resend: ack again
        try:
            text = open_box(self._keys.chat_recv, frame.get("encrypted"), _aad(message_id)).decode()
        except (SealError, UnicodeDecodeError):
            return [Send({"type": "reject", "message_id": message_id, "code": "undecryptable"})]
        if frame.get("signature") != signature(text):
            return [Send({"type": "reject", "message_id": message_id, "code": "bad_signature"})]
        try:
            self._check_length(text)
        except ChatError as exc:
            return [Send({"type": "reject", "message_id": message_id, "code": exc.code})]
        timestamp = frame.get("timestamp")
        message = ChatMessage(
            message_id,
            "peer",
            text,
            timestamp if isinstance(timestamp, int) else 0,
            Status.DELIVERED,
        )
        self.messages[message_id] = message
        return [  # the user first, then the ack: the UI event is the latency that counts
            Notify({"type": "message", "message": message.public()}),
            Send({"type": "ack", "message_id": message_id}),
        ]

    def handle_delete(self, message_id: str) -> list[ChatOutput]:
        message = self.messages.get(message_id)
        if message is None or message.author != "peer" or message.deleted:
            return []
        message.deleted = True
        message.text = ""
        return [Notify(_deleted(message_id))]

    def _set_status(self, message_id: str, status: Status, code: object = None) -> list[ChatOutput]:
        message = self.messages.get(message_id)
        if message is None or message.author != "me" or message.status is status:
            return []
        message.status = status
        event: dict[str, Any] = {
            "type": "message-status",
            "message_id": message_id,
            "status": status.value,
        }
        if isinstance(code, str):
            event["code"] = code
        return [Notify(event)]

    def listing(self) -> list[dict[str, Any]]:
        return [m.public() for m in self.messages.values()]

    def wipe(self) -> None:
        """Forget every message and the keys."""
        for message in self.messages.values():
            message.text = ""
        self.messages.clear()
        self._keys = None


def _deleted(message_id: str) -> dict[str, Any]:
    return {"type": "message-deleted", "message_id": message_id}
