"""The file transfer state machines (orbitd/transfer_sender.py, transfer_receiver.py),
with no I/O: each input and the outputs it gives, recorded. And the edge's pump
(orbitd/files.py) against a fake channel: it sends only while the channel's buffered
amount is under the high-water mark."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from orbitcore.protocol import files as wire_files
from orbitcore.protocol import peer as wire
from orbitcore.protocol.files import CHUNK_BYTES
from orbitd.files import FileTransfers
from orbitd.transfer import (
    UPLOAD_SLICE_MAX,
    WINDOW_BYTES,
    WINDOW_CHUNKS,
    Control,
    FileState,
    Flow,
    Output,
    TransferRefusal,
)
from orbitd.transfer_receiver import Incoming
from orbitd.transfer_sender import Outgoing

FID = "f-0123456789ab"
MiB = 1024 * 1024


def shown(outputs: list[Output]) -> list[Any]:
    """Outputs as comparable values: frames as their dicts, `Changed` as a word."""
    return [
        o.frame.to_dict()
        if isinstance(o, Control | Flow)
        else ("progress" if o.progress else "changed")
        for o in outputs
    ]


def accepted_sender(size: int) -> Outgoing:
    sender = Outgoing(FID, 1, "a.bin", size, "")
    sender.offer()
    sender.handle_file_accept(wire.FileAccept(FID), 0.0)
    return sender


def accepted_receiver(size: int) -> Incoming:
    receiver = Incoming(FID, 1, "a.bin", size, "")
    receiver.accept(0.0)
    return receiver


def test_an_offer_then_the_bytes_then_done_with_their_sha256() -> None:
    sender = Outgoing(FID, 1, "a.bin", CHUNK_BYTES + 5, "text/plain")
    assert shown(sender.offer()) == [
        {"type": "file-offer", "file_id": FID, "number": 1, "name": "a.bin",
         "size": CHUNK_BYTES + 5, "media_type": "text/plain"},
        "changed",
    ]  # fmt: skip
    assert not sender.has_room(1)  # nothing is taken before the receiver accepts
    assert shown(sender.handle_file_accept(wire.FileAccept(FID), 1.0)) == ["changed"]
    data = b"x" * (CHUNK_BYTES + 5)
    assert shown(sender.take(0, data[:100], 1.0)) == ["progress"]
    assert sender.next_chunk() is None  # not a whole chunk yet
    assert shown(sender.take(100, data[100:], 1.0)) == [
        {"type": "file-done", "file_id": FID, "sha256": hashlib.sha256(data).hexdigest()},
        "progress",
    ]
    assert sender.next_chunk() == (0, data[:CHUNK_BYTES])
    assert sender.next_chunk() == (1, data[CHUNK_BYTES:])
    assert sender.next_chunk() is None
    assert shown(sender.handle_file_ack(wire_files.FileAck(FID, 1), 2.0)) == ["progress"]
    assert shown(sender.handle_file_ack(wire_files.FileAck(FID, 2), 3.0)) == ["changed"]
    assert sender.state is FileState.COMPLETE and sender.held_bytes() == 0


def test_an_empty_file_is_done_with_its_offer() -> None:
    sender = Outgoing(FID, 1, "empty", 0, "")
    assert shown(sender.offer())[1] == {
        "type": "file-done",
        "file_id": FID,
        "sha256": hashlib.sha256(b"").hexdigest(),
    }
    receiver = Incoming(FID, 1, "empty", 0, "")
    receiver.handle_file_done(wire.FileDone(FID, hashlib.sha256(b"").hexdigest()), 0.0)
    assert shown(receiver.accept(0.0))[-1] == "progress"  # verified at once
    receiver.attach()
    chunks, out = receiver.take(16, 1.0)
    assert chunks == [] and shown(out) == [
        {"type": "file-ack", "file_id": FID, "next": 0},
        "changed",
    ]
    assert receiver.state is FileState.COMPLETE


def test_the_sender_holds_at_most_its_window_and_refuses_bad_slices() -> None:
    sender = accepted_sender(64 * MiB)
    for offset in range(0, WINDOW_BYTES, MiB):
        assert sender.has_room(MiB)
        sender.take(offset, bytes(MiB), 0.0)
    assert sender.held_bytes() == WINDOW_BYTES and not sender.has_room(1)
    with pytest.raises(TransferRefusal) as wrong:
        sender.check_slice(0, MiB)
    assert (wrong.value.code, wrong.value.extra) == ("wrong_offset", {"next_offset": WINDOW_BYTES})
    with pytest.raises(TransferRefusal) as big:
        sender.check_slice(WINDOW_BYTES, UPLOAD_SLICE_MAX + 1)
    assert big.value.code == "chunk_too_large"
    while sender.next_chunk() is not None:
        pass
    sender.handle_file_ack(wire_files.FileAck(FID, 16), 1.0)  # the download took 1 MiB
    assert sender.has_room(MiB) and sender.held_bytes() == WINDOW_BYTES - MiB
    # An ack of chunks never sent: a lying peer.
    assert shown(sender.handle_file_ack(wire_files.FileAck(FID, WINDOW_CHUNKS + 1), 2.0)) == [
        {"type": "file-cancel", "file_id": FID, "code": "bad_chunk"},
        "changed",
    ]
    assert sender.state is FileState.FAILED and sender.held_bytes() == 0


def test_after_a_lost_link_the_sender_resumes_where_the_receiver_says() -> None:
    sender = accepted_sender(10 * CHUNK_BYTES)
    sender.take(0, bytes(10 * CHUNK_BYTES), 0.0)
    for _ in range(6):
        sender.next_chunk()
    sender.handle_file_ack(wire_files.FileAck(FID, 2), 1.0)
    sender.link_lost()
    assert sender.next_chunk() is None  # waits for `file-resume`
    assert sender.handle_file_resume(wire_files.FileResume(FID, 4), 2.0) == []
    assert [sender.next_chunk()[0] for _ in range(6)] == [4, 5, 6, 7, 8, 9]  # type: ignore[index]
    # A resume that claims more than was ever held is clamped to the window.
    sender.link_lost()
    sender.handle_file_resume(wire_files.FileResume(FID, 99), 3.0)
    assert sender.next_chunk() is None and sender.next_send == 10


def chunk_of(size: int, index: int) -> bytes:
    return bytes([index % 256]) * min(CHUNK_BYTES, size - index * CHUNK_BYTES)


def test_the_receiver_holds_back_the_last_chunk_until_the_hash_is_checked() -> None:
    size = 2 * CHUNK_BYTES + 3
    whole = b"".join(chunk_of(size, i) for i in range(3))
    receiver = accepted_receiver(size)
    receiver.attach()
    for index in range(3):
        assert shown(receiver.chunk(index, chunk_of(size, index))) == ["progress"]
    assert receiver.chunk(1, chunk_of(size, 1)) == []  # sent again after a reconnect
    chunks, out = receiver.take(16, 1.0)
    assert chunks == [chunk_of(size, 0), chunk_of(size, 1)]  # not the last
    assert shown(out) == [{"type": "file-ack", "file_id": FID, "next": 2}, "progress"]
    assert not receiver.readable()
    done = wire.FileDone(FID, hashlib.sha256(whole).hexdigest())
    assert shown(receiver.handle_file_done(done, 2.0)) == ["progress"]
    chunks, out = receiver.take(16, 3.0)
    assert chunks == [chunk_of(size, 2)] and receiver.state is FileState.COMPLETE
    assert shown(out) == [{"type": "file-ack", "file_id": FID, "next": 3}, "changed"]
    assert receiver.resume() == [wire_files.FileAck(FID, 3)]  # told again on a new connection
    with pytest.raises(TransferRefusal) as gone:
        receiver.attach()
    assert gone.value.status == 410


def test_a_wrong_sha256_discards_the_file() -> None:
    receiver = accepted_receiver(CHUNK_BYTES)
    receiver.chunk(0, chunk_of(CHUNK_BYTES, 0))
    assert receiver.held_bytes() == CHUNK_BYTES
    assert shown(receiver.handle_file_done(wire.FileDone(FID, "0" * 64), 1.0)) == [
        {"type": "file-cancel", "file_id": FID, "code": "hash_mismatch"},
        "changed",
    ]
    assert receiver.state is FileState.FAILED and receiver.held_bytes() == 0
    assert receiver.error is not None and receiver.error["code"] == "hash_mismatch"
    assert receiver.take(16, 2.0) == ([], [])


@pytest.mark.parametrize(
    ("index", "plaintext"),
    [
        (0, None),  # its seal did not open
        (1, chunk_of(10 * CHUNK_BYTES, 1)),  # skips chunk 0
        (0, b"short"),  # the wrong size
        (10, chunk_of(11 * CHUNK_BYTES, 10)),  # past the file's end
    ],
)
def test_a_bad_chunk_fails_the_transfer(index: int, plaintext: bytes | None) -> None:
    receiver = accepted_receiver(10 * CHUNK_BYTES)
    assert shown(receiver.chunk(index, plaintext)) == [
        {"type": "file-cancel", "file_id": FID, "code": "bad_chunk"},
        "changed",
    ]
    assert receiver.state is FileState.FAILED


def test_a_chunk_beyond_the_window_fails_and_one_before_accept_is_ignored() -> None:
    size = (WINDOW_CHUNKS + 1) * CHUNK_BYTES
    offered = Incoming(FID, 1, "a.bin", size, "")
    assert offered.chunk(0, chunk_of(size, 0)) == [] and offered.held_bytes() == 0
    receiver = accepted_receiver(size)
    for index in range(WINDOW_CHUNKS):
        receiver.chunk(index, chunk_of(size, index))
    assert receiver.held_bytes() == WINDOW_BYTES  # nothing downloaded: the window is full
    out = receiver.chunk(WINDOW_CHUNKS, chunk_of(size, WINDOW_CHUNKS))
    assert shown(out)[0]["code"] == "bad_chunk" and receiver.held_bytes() == 0


def test_cancel_decline_interrupted_download_and_session_end_free_everything() -> None:
    sender = accepted_sender(4 * CHUNK_BYTES)
    sender.take(0, bytes(4 * CHUNK_BYTES), 0.0)
    assert shown(sender.cancel(1.0)) == [
        {"type": "file-cancel", "file_id": FID, "code": "cancelled"},
        "changed",
    ]
    assert (sender.state, sender.cancelled_by, sender.held_bytes()) == (
        FileState.CANCELLED,
        "me",
        0,
    )
    with pytest.raises(TransferRefusal) as finished:
        sender.cancel(2.0)
    assert finished.value.code == "file_finished"

    receiver = accepted_receiver(4 * CHUNK_BYTES)
    receiver.chunk(0, chunk_of(4 * CHUNK_BYTES, 0))
    receiver.handle_file_cancel(wire.FileCancel(FID, "cancelled"), 1.0)
    assert (receiver.state, receiver.cancelled_by, receiver.held_bytes()) == (
        FileState.CANCELLED,
        "peer",
        0,
    )

    declined = Incoming(FID, 1, "a.bin", 1, "")
    assert shown(declined.decline(0.0)) == [{"type": "file-decline", "file_id": FID}, "changed"]
    with pytest.raises(TransferRefusal):
        declined.accept(1.0)

    reading = accepted_receiver(4 * CHUNK_BYTES)
    reading.attach()
    reading.chunk(0, chunk_of(4 * CHUNK_BYTES, 0))
    reading.chunk(1, chunk_of(4 * CHUNK_BYTES, 1))
    reading.take(1, 1.0)
    assert shown(reading.detach())[0]["code"] == "download_interrupted"
    assert reading.held_bytes() == 0

    ending = accepted_receiver(4 * CHUNK_BYTES)
    ending.chunk(0, chunk_of(4 * CHUNK_BYTES, 0))
    ending.session_ended()
    assert ending.state is FileState.FAILED and ending.held_bytes() == 0
    assert ending.error is not None and ending.error["code"] == "session_ended"


def test_rate_and_time_left_from_the_acknowledged_bytes() -> None:
    sender = accepted_sender(10 * CHUNK_BYTES)
    sender.take(0, bytes(10 * CHUNK_BYTES), 0.0)
    for _ in range(10):
        sender.next_chunk()
    sender.handle_file_ack(wire_files.FileAck(FID, 2), 1.0)
    sender.handle_file_ack(wire_files.FileAck(FID, 4), 2.0)
    public = sender.public(2.0)
    assert public["transferred"] == 4 * CHUNK_BYTES
    assert public["rate"] == 2 * CHUNK_BYTES  # bytes per second, since the accept at 0
    assert public["eta_seconds"] == 3
    assert sender.public(2.0, link_up=False)["state"] == "paused"
    assert sender.public(10.0)["rate"] == 0  # nothing for longer than the rate's span


class FakeChannel:
    """A files channel whose buffered amount the test sets."""

    def __init__(self) -> None:
        self.sent: list[bytes | str] = []
        self.buffered = 0
        self.high_water = 4 * CHUNK_BYTES
        self.is_open = True

    @property
    def has_room(self) -> bool:
        return self.buffered < self.high_water

    def attach(self, events: object) -> None:
        pass

    def send(self, data: bytes | str) -> None:
        self.sent.append(data)
        if isinstance(data, bytes):
            self.buffered += len(data)


async def test_the_pump_keeps_the_buffered_amount_under_the_high_water_mark() -> None:
    channel = FakeChannel()
    control: list[Any] = []
    key = bytes(32)
    files = FileTransfers(
        send_key=key,
        recv_key=key,
        channel=channel,  # type: ignore[arg-type]
        send_control=control.append,
        emit=lambda event: None,
        limit_bytes=2**32,
    )
    files.start()
    file_id = files.offer("a.bin", 2 * MiB, "")["id"]
    transfer = files.get(file_id)
    assert isinstance(transfer, Outgoing)
    files.handle_file_accept(wire.FileAccept(file_id))
    await files.upload(transfer, 0, bytes(MiB))
    chunks = [d for d in channel.sent if isinstance(d, bytes)]
    assert len(chunks) == 4  # then the channel was full
    assert [wire_files.unpack_chunk(c).index for c in chunks] == [0, 1, 2, 3]
    channel.buffered = 0  # SCTP sent them: `bufferedamountlow`
    files.files_low()
    assert len([d for d in channel.sent if isinstance(d, bytes)]) == 8
    assert [type(f).__name__ for f in control] == ["FileLimits", "FileOffer"]


def test_on_a_new_connection_the_receiver_says_how_far_it_downloaded_and_what_it_has() -> None:
    size = 10 * CHUNK_BYTES
    receiver = accepted_receiver(size)
    receiver.attach()
    for index in range(6):
        receiver.chunk(index, chunk_of(size, index))
    receiver.take(4, 1.0)  # its file-ack (next 4) may be lost with the old connection
    assert receiver.resume() == [wire_files.FileAck(FID, 4), wire_files.FileResume(FID, 6)]
    sender = accepted_sender(size)
    sender.take(0, bytes(size), 0.0)
    for _ in range(8):
        sender.next_chunk()
    sender.link_lost()
    for frame in receiver.resume():
        if isinstance(frame, wire_files.FileAck):
            sender.handle_file_ack(frame, 2.0)
        else:
            assert isinstance(frame, wire_files.FileResume)
            sender.handle_file_resume(frame, 2.0)
    assert sender.acked == 4 and sender.held_bytes() == 6 * CHUNK_BYTES  # room again
    assert sender.next_chunk() == (6, bytes(CHUNK_BYTES))
