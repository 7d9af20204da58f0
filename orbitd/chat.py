"""The conversation, in memory only, with no I/O: the seed's envelope on the data channel.

Its wire frames are `orbitcore.protocol.peer`'s `ChatFrame`s (`message`, `ack`,
`reject`, `delete`, `end`), read and checked by the session before they come here,
one `handle_<type>` each. `encrypted` is AES-256-GCM under the sender's chat key (the
message id is the associated data); `signature`, checked on receipt, is an HMAC of
the message id and text under the sender's MAC key when both daemons announced
`keyed-signature`, else the seed's SHA-256 of the plaintext.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from orbitcore.errors import Refusal
from orbitcore.protocol.peer import Ack, ChatFrame, Delete, End, Message, Reject

from .crypto import SealError, SessionKeys, keyed_signature, open_box, seal, signature


class Status(StrEnum):
    SENDING = "sending"  # queued while the connection is down (feature `resume`)
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

    frame: ChatFrame


@dataclass(frozen=True)
class Notify:
    """An event for the user's UI."""

    event: dict[str, Any]


ChatOutput = Send | Notify


def _aad(message_id: str) -> bytes:
    return f"chatorbit/chat/{message_id}".encode()


class Conversation:
    def __init__(
        self, keys: SessionKeys, max_message_length: int, *, keyed_signature: bool = False
    ) -> None:
        self._keys: SessionKeys | None = keys
        self.max_message_length = max_message_length
        self.keyed_signature = keyed_signature
        self.messages: dict[str, ChatMessage] = {}

    def _signature(self, key: bytes, message_id: str, text: str) -> str:
        return keyed_signature(key, message_id, text) if self.keyed_signature else signature(text)

    def _check_length(self, text: str) -> None:
        if len(text) > self.max_message_length:
            raise ChatError(
                422,
                "message_too_long",
                f"A message may be at most {self.max_message_length} characters; "
                f"this one has {len(text)}.",
            )

    def compose(
        self, text: object, now: float, *, queued: bool = False
    ) -> tuple[ChatMessage, Send]:
        """A new message of ours and its frame; `queued`: it waits for a connection."""
        if self._keys is None:
            raise ChatError(409, "session_ended", "The session has ended.")
        if not isinstance(text, str) or not text.strip():
            raise ChatError(422, "empty_message", "Write something first.")
        self._check_length(text)
        message_id = str(uuid.uuid4())
        status = Status.SENDING if queued else Status.SENT
        message = ChatMessage(message_id, "me", text, int(now), status)
        frame = Message(
            message_id,
            seal(self._keys.chat_send, text.encode(), _aad(message_id)),
            self._signature(self._keys.mac_send, message_id, text),
            int(now),
        )
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
        return [Send(Delete(message_id)), Notify(_deleted(message_id))]

    # -- the peer's frames (already read and checked), one handler each ------------------
    def handle_end(self, frame: End) -> list[ChatOutput]:
        return [Notify({"type": "peer-ended"})]

    def handle_ack(self, frame: Ack) -> list[ChatOutput]:
        return self._set_status(frame.message_id, Status.DELIVERED)

    def handle_reject(self, frame: Reject) -> list[ChatOutput]:
        return self._set_status(frame.message_id, Status.FAILED, frame.code)

    def handle_message(self, frame: Message) -> list[ChatOutput]:
        message_id = frame.message_id
        if self._keys is None:
            return []
        if message_id in self.messages:
            return [Send(Ack(message_id))]  # a resend: ack again
        try:
            text = open_box(self._keys.chat_recv, frame.encrypted, _aad(message_id)).decode()
        except (SealError, UnicodeDecodeError):
            return [Send(Reject(message_id, "undecryptable"))]
        expected = self._signature(self._keys.mac_recv, message_id, text)
        if not hmac.compare_digest(frame.signature, expected):
            return [Send(Reject(message_id, "bad_signature"))]
        try:
            self._check_length(text)
        except ChatError as exc:
            return [Send(Reject(message_id, exc.code))]
        message = ChatMessage(message_id, "peer", text, frame.timestamp, Status.DELIVERED)
        self.messages[message_id] = message
        return [  # the user first, then the ack: the UI event is the latency that counts
            Notify({"type": "message", "message": message.public()}),
            Send(Ack(message_id)),
        ]

    def handle_delete(self, frame: Delete) -> list[ChatOutput]:
        message_id = frame.message_id
        message = self.messages.get(message_id)
        if message is None or message.author != "peer" or message.deleted:
            return []
        message.deleted = True
        message.text = ""
        return [Notify(_deleted(message_id))]

    def _set_status(
        self, message_id: str, status: Status, code: str | None = None
    ) -> list[ChatOutput]:
        message = self.messages.get(message_id)
        if message is None or message.author != "me" or message.status is status:
            return []
        message.status = status
        event: dict[str, Any] = {
            "type": "message-status",
            "message_id": message_id,
            "status": status.value,
        }
        if code is not None:
            event["code"] = code
        return [Notify(event)]

    def went_out(self, message_ids: list[str]) -> list[ChatOutput]:
        """These queued messages were sent on a new connection."""
        return [
            out
            for message_id in message_ids
            if (m := self.messages.get(message_id)) is not None and m.status is Status.SENDING
            for out in self._set_status(message_id, Status.SENT)
        ]

    def undelivered(self, message_ids: list[str]) -> list[ChatOutput]:
        """The session ends and the other side never acknowledged these: not delivered."""
        return [
            out
            for message_id in message_ids
            if (m := self.messages.get(message_id)) is not None
            and m.status in (Status.SENDING, Status.SENT)
            for out in self._set_status(message_id, Status.FAILED, "not_delivered")
        ]

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
