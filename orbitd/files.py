"""A session's file transfers (feature `files`): the I/O around `orbitd.transfer`.

The user's actions come from the HTTP API (`orbitd.files_api`), the peer's control
frames from the session (`handle_file_*`, through the durable stream), chunks and flow
control from the `files` data channel (`Peer.files`). Chunks are sealed here with the
session's file keys (one per direction) and sent while the channel has room; the
browser's upload waits while the window is full, the download while nothing is there:
each waits on its transfer's wake-up, set whenever the transfer changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from orbitcore.protocol import files as wire_files
from orbitcore.protocol import peer as wire
from orbitcore.protocol.frames import Frame, ProtocolError, dispatch

from .crypto import SealError, open_bytes, seal_bytes
from .peer_files import FilesChannel
from .transfer import Changed, Control, Flow, Output, Transfer, TransferRefusal
from .transfer_receiver import Incoming
from .transfer_sender import Outgoing

log = logging.getLogger("orbitd.files")
PROGRESS_SECONDS = 0.25  # at most ~4 progress events per second per file
NAME_MAX = 255
TRANSFERS_MAX = 1000  # files in one session, either way (a peer cannot make us hoard offers)
TYPE_MAX = 255
Emit = Callable[[dict[str, Any]], None]


def _aad(file_id: str, index: int) -> bytes:
    return f"chatorbit/file/{file_id}/{index}".encode()


def _words(limit: int) -> str:
    return f"{limit / 2**30:.1f} GiB" if limit >= 2**30 else f"{limit / 2**20:.1f} MiB"


class FileTransfers:
    def __init__(
        self,
        *,
        send_key: bytes,
        recv_key: bytes,
        channel: FilesChannel,
        send_control: Callable[[Frame], None],
        emit: Emit,
        limit_bytes: int,
    ) -> None:
        self._send_key, self._recv_key = send_key, recv_key
        self.channel = channel
        self._send_control = send_control
        self._emit = emit
        self.limit_bytes = limit_bytes
        self.peer_limit: int | None = None  # the peer's `file-limits`
        self.transfers: dict[str, Transfer] = {}  # in session order
        self._incoming_numbers: dict[int, Incoming] = {}
        self._next_number = 1
        self.link_up = True  # the verified connection is up (not reconnecting)
        self._wakes: dict[str, asyncio.Event] = {}
        self._published: dict[str, float] = {}
        self._trailing: dict[str, asyncio.TimerHandle] = {}
        self._sending: list[str] = []  # round robin of outgoing transfers
        self._ended = False

    # -- running ------------------------------------------------------------------------------
    def start(self) -> None:
        """The chat is ready: tell the peer our limit, hear the channel."""
        self.channel.attach(self)
        self._send_control(wire.FileLimits(self.limit_bytes))
        if self.channel.is_open:
            self.files_open()

    def listing(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [t.public(now, link_up=self.link_up) for t in self.transfers.values()]

    def _apply(self, transfer: Transfer, outputs: list[Output]) -> None:
        for out in outputs:
            if isinstance(out, Control):
                self._send_control(out.frame)
            elif isinstance(out, Flow):
                # Down: a new connection sends `file-resume` or the final ack again.
                with contextlib.suppress(ConnectionError):
                    self.channel.send(out.frame.encode())
            elif isinstance(out, Changed):
                self._publish(transfer, progress=out.progress)
        if transfer.final:
            self._finished(transfer)
        self._wake(transfer.file_id)

    def _publish(self, transfer: Transfer, *, progress: bool = False) -> None:
        """The UI's file event; progress at most every `PROGRESS_SECONDS` per file (one
        held back goes out at the end of that time, so the last figures are shown)."""
        now = time.monotonic()
        wait = self._published.get(transfer.file_id, -PROGRESS_SECONDS) + PROGRESS_SECONDS - now
        if progress and wait > 0:
            if transfer.file_id not in self._trailing:
                later = asyncio.get_running_loop().call_later(wait, self._trail, transfer)
                self._trailing[transfer.file_id] = later
            return
        self._published[transfer.file_id] = now
        self._emit({"type": "file", "file": transfer.public(now, link_up=self.link_up)})

    def _trail(self, transfer: Transfer) -> None:
        self._trailing.pop(transfer.file_id, None)
        if not self._ended:
            self._publish(transfer)

    def _finished(self, transfer: Transfer) -> None:
        if transfer.file_id in self._sending:
            self._sending.remove(transfer.file_id)
        if isinstance(transfer, Incoming):
            self._incoming_numbers.pop(transfer.number, None)
        log.info(
            "file transfer over",
            extra={"fields": {"direction": transfer.direction, "state": transfer.state.value}},
        )

    def _wake(self, file_id: str) -> None:
        wake = self._wakes.pop(file_id, None)
        if wake is not None:
            wake.set()

    async def wait(self, transfer: Transfer, ready: Callable[[], bool]) -> None:
        """Until `ready()` (checked whenever the transfer changes) or the transfer is over."""
        while not ready() and not transfer.final and not self._ended:
            await self._wakes.setdefault(transfer.file_id, asyncio.Event()).wait()

    def get(self, file_id: str) -> Transfer:
        transfer = self.transfers.get(file_id)
        if transfer is None:
            raise TransferRefusal(404, "file_not_found", "There is no such file.")
        return transfer

    # -- the user's actions -------------------------------------------------------------------
    def offer(self, name: object, size: object, media_type: object) -> dict[str, Any]:
        if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX:
            raise TransferRefusal(
                422, "invalid_file", f"A file needs a name of 1 to {NAME_MAX} characters."
            )
        if not name.isprintable() or "/" in name or "\\" in name:
            raise TransferRefusal(422, "invalid_file", "The file's name has characters it cannot.")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= 2**53:
            raise TransferRefusal(422, "invalid_file", "A file's size is a whole number of bytes.")
        kind = "" if media_type is None else media_type
        if not isinstance(kind, str) or len(kind) > TYPE_MAX or not kind.isprintable():
            raise TransferRefusal(422, "invalid_file", "A file's type is a short text.")
        if size > self.limit_bytes:
            raise TransferRefusal(
                422,
                "file_too_large",
                f"Your ChatOrbit sends files of at most {_words(self.limit_bytes)}.",
                limit=self.limit_bytes,
            )
        if self.peer_limit is not None and size > self.peer_limit:
            raise TransferRefusal(
                422,
                "file_too_large",
                f"The other person accepts files of at most {_words(self.peer_limit)}.",
                limit=self.peer_limit,
            )
        if len(self.transfers) >= TRANSFERS_MAX:
            raise TransferRefusal(
                409, "too_many_files", f"A session carries at most {TRANSFERS_MAX} files."
            )
        file_id = "f-" + secrets.token_urlsafe(12)
        transfer = Outgoing(file_id, self._next_number, name, size, kind)
        self._next_number += 1
        self.transfers[file_id] = transfer
        self._sending.append(file_id)
        self._apply(transfer, transfer.offer())
        return transfer.public(time.monotonic(), link_up=self.link_up)

    def answer(self, file_id: str, accept: bool) -> dict[str, Any]:
        transfer = self.get(file_id)
        if not isinstance(transfer, Incoming):
            raise TransferRefusal(409, "file_not_offered", "Only the receiver answers an offer.")
        now = time.monotonic()
        self._apply(transfer, transfer.accept(now) if accept else transfer.decline(now))
        return transfer.public(now, link_up=self.link_up)

    def cancel(self, file_id: str) -> dict[str, Any]:
        transfer = self.get(file_id)
        self._apply(transfer, transfer.cancel(time.monotonic()))
        return transfer.public(time.monotonic(), link_up=self.link_up)

    async def upload(self, transfer: Outgoing, offset: int, data: bytes) -> int:
        """Take a slice once the window has room for it: the next offset wanted."""
        transfer.check_slice(offset, len(data))
        await self.wait(transfer, lambda: transfer.has_room(len(data)))
        self._apply(transfer, transfer.take(offset, data, time.monotonic()))
        self.pump()
        return transfer.upload_offset

    def taken(self, transfer: Incoming, max_chunks: int) -> list[bytes]:
        chunks, outputs = transfer.take(max_chunks, time.monotonic())
        self._apply(transfer, outputs)
        return chunks

    def detached(self, transfer: Incoming) -> None:
        self._apply(transfer, transfer.detach())

    # -- sending ---------------------------------------------------------------------------------
    def pump(self) -> None:
        """Seal and send chunks, taking turns between files, while the channel has room."""
        if not self.link_up or self._ended:
            return
        while self._sending and self.channel.has_room:
            sent = False
            for file_id in list(self._sending):
                transfer = self.transfers[file_id]
                if not isinstance(transfer, Outgoing) or not self.channel.has_room:
                    continue
                due = transfer.next_chunk()
                if due is None:
                    continue
                index, plaintext = due
                sealed = seal_bytes(self._send_key, plaintext, _aad(file_id, index))
                self.channel.send(wire_files.pack_chunk(transfer.number, index, sealed))
                sent = True
            if not sent:
                return

    # -- the files channel ----------------------------------------------------------------------
    def files_open(self) -> None:
        """A connection's files channel is open: resume what was under way."""
        if self.link_up:
            self._resume()

    def files_low(self) -> None:
        self.pump()

    def files_message(self, data: str | bytes) -> None:
        if self._ended:
            return
        try:
            if isinstance(data, bytes):
                self._chunk(wire_files.unpack_chunk(data))
                return
            frame = wire_files.CHANNEL.parse(data)
            dispatch(self, frame)
        except ProtocolError as refused:
            kind = wire_files.CHANNEL.logged_type(refused)
            log.warning("protocol_error", extra={"fields": {"channel": "files", "type": kind}})

    def _chunk(self, chunk: wire_files.Chunk) -> None:
        transfer = self._incoming_numbers.get(chunk.number)
        if transfer is None:
            return  # a chunk of a transfer that is over, or that never was
        try:
            plaintext: bytes | None = open_bytes(
                self._recv_key, chunk.sealed, _aad(transfer.file_id, chunk.index)
            )
        except SealError:
            plaintext = None
            log.warning("a file chunk did not open", extra={"fields": {"index": chunk.index}})
        self._apply(transfer, transfer.chunk(chunk.index, plaintext))

    def _outgoing(self, file_id: str, frame_type: str) -> Outgoing:
        transfer = self.transfers.get(file_id)
        if not isinstance(transfer, Outgoing):
            raise ProtocolError(f"`{frame_type}` names no file of ours.", frame_type=frame_type)
        return transfer

    def _incoming(self, file_id: str, frame_type: str) -> Incoming:
        transfer = self.transfers.get(file_id)
        if not isinstance(transfer, Incoming):
            raise ProtocolError(f"`{frame_type}` names no file of theirs.", frame_type=frame_type)
        return transfer

    def handle_file_ack(self, frame: wire_files.FileAck) -> None:
        transfer = self._outgoing(frame.file_id, frame.TYPE)
        self._apply(transfer, transfer.handle_file_ack(frame, time.monotonic()))
        self.pump()

    def handle_file_resume(self, frame: wire_files.FileResume) -> None:
        transfer = self._outgoing(frame.file_id, frame.TYPE)
        self._apply(transfer, transfer.handle_file_resume(frame, time.monotonic()))
        self.pump()

    # -- the peer channel's control frames (`FileFrame`) ---------------------------------------
    def handle(self, frame: wire.FileFrame) -> None:
        if not self._ended:
            dispatch(self, frame)

    def handle_file_limits(self, frame: wire.FileLimits) -> None:
        self.peer_limit = max(0, frame.max_bytes)

    def handle_file_offer(self, frame: wire.FileOffer) -> None:
        if frame.file_id in self.transfers or frame.number in self._incoming_numbers:
            raise ProtocolError("`file-offer` names a file again.", frame_type=frame.TYPE)
        if not 0 <= frame.size <= 2**53 or not 0 < frame.number < 2**32:
            raise ProtocolError("`file-offer` has an impossible size.", frame_type=frame.TYPE)
        if len(self.transfers) >= TRANSFERS_MAX:
            raise ProtocolError("`file-offer`: too many files.", frame_type=frame.TYPE)
        transfer = Incoming(frame.file_id, frame.number, frame.name, frame.size, frame.media_type)
        self.transfers[frame.file_id] = transfer
        self._incoming_numbers[frame.number] = transfer
        if frame.size > self.limit_bytes:  # a sender that ignored our limit
            self._apply(transfer, transfer.fail("too_large"))
            return
        self._publish(transfer)

    def handle_file_accept(self, frame: wire.FileAccept) -> None:
        transfer = self._outgoing(frame.file_id, frame.TYPE)
        self._apply(transfer, transfer.handle_file_accept(frame, time.monotonic()))
        self.pump()

    def handle_file_decline(self, frame: wire.FileDecline) -> None:
        transfer = self._outgoing(frame.file_id, frame.TYPE)
        self._apply(transfer, transfer.handle_file_decline(frame, time.monotonic()))

    def handle_file_cancel(self, frame: wire.FileCancel) -> None:
        transfer = self.transfers.get(frame.file_id)
        if transfer is None:
            raise ProtocolError("`file-cancel` names no file.", frame_type=frame.TYPE)
        self._apply(transfer, transfer.handle_file_cancel(frame, time.monotonic()))

    def handle_file_done(self, frame: wire.FileDone) -> None:
        transfer = self._incoming(frame.file_id, frame.TYPE)
        self._apply(transfer, transfer.handle_file_done(frame, time.monotonic()))

    # -- the connection under it -------------------------------------------------------------------
    def link_lost(self) -> None:
        self.link_up = False
        for transfer in self.transfers.values():
            if isinstance(transfer, Outgoing):
                transfer.link_lost()
            if not transfer.final:
                self._publish(transfer)

    def link_back(self) -> None:
        self.link_up = True
        if self.channel.is_open:
            self._resume()
        for transfer in self.transfers.values():
            if not transfer.final:
                self._publish(transfer)

    def _resume(self) -> None:
        for transfer in self.transfers.values():
            if not isinstance(transfer, Incoming):
                continue
            for frame in transfer.resume():
                try:
                    self.channel.send(frame.encode())
                except ConnectionError:
                    return
        self.pump()

    def end(self) -> None:
        """The session ended: every transfer fails, every buffer is freed, every wait ends."""
        self._ended = True
        self.channel.attach(None)
        for transfer in self.transfers.values():
            if not transfer.final:
                transfer.session_ended()
                self._publish(transfer)
        for file_id in list(self._wakes):
            self._wake(file_id)
        for timer in self._trailing.values():
            timer.cancel()
        self._trailing.clear()
        self._sending.clear()
        self._incoming_numbers.clear()
