"""The `files` channel: a second reliable, ordered data channel between two daemons
(feature `files`), so that the chat never waits behind a file's bytes.

It carries two kinds of message. Binary messages are chunks of a file, laid out as
`CHUNK_HEADER` says: one version byte (`CHUNK_VERSION`), the sender's transfer number
(`file-offer.number`, unsigned 32 bits, big-endian), the chunk index (unsigned 32 bits,
big-endian; chunk i holds bytes `i * CHUNK_BYTES` up to `CHUNK_BYTES` of them), then
the chunk sealed with AES-256-GCM under the sender's file key (HKDF of the PAKE's key,
one per direction): a 12-byte nonce, the ciphertext and the 16-byte tag, the associated
data being `chatorbit/file/<file_id>/<index>`. Text messages are the JSON frames below:
the receiver's flow control and resume. Offers, answers, cancels and the final SHA-256
travel on the `peer` channel (`FileFrame`s, in the durable stream).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from .frames import Channel, Frame, ProtocolError
from .peer import FILE_ID

CHANNEL = Channel(
    "files",
    "The daemons' reliable, ordered `files` data channel (feature `files`), made with the "
    "`chat` channel on every connection (the host makes both, the guest adopts them). "
    "Binary messages are sealed chunks (`orbitcore/protocol/files.py`: a version byte 1, the "
    "transfer number and the chunk index as unsigned 32-bit big-endian, a 12-byte nonce, "
    "the AES-256-GCM ciphertext of at most 65536 bytes and its tag; associated data "
    "`chatorbit/file/<file_id>/<index>`). Text messages are the JSON frames below, at most "
    "1024 bytes. A chunk that does not open, lies outside the receiver's window or has "
    "the wrong size fails its transfer (`file-cancel` `bad_chunk`); a frame that cannot "
    "be read is ignored.",
    max_bytes=1024,
)
CHUNK_VERSION = 1
CHUNK_BYTES = 65536  # plaintext bytes of every chunk but a file's last
CHUNK_HEADER = struct.Struct(">BII")  # version, transfer number, chunk index
SEAL_OVERHEAD = 12 + 16  # nonce and tag
MAX_CHUNK_MESSAGE = CHUNK_HEADER.size + SEAL_OVERHEAD + CHUNK_BYTES


def chunk_count(size: int) -> int:
    """How many chunks a file of `size` bytes has (an empty file has none)."""
    return -(-size // CHUNK_BYTES)


def chunk_size(size: int, index: int) -> int:
    """The plaintext length of chunk `index` of a file of `size` bytes."""
    return min(CHUNK_BYTES, size - index * CHUNK_BYTES)


def pack_chunk(number: int, index: int, sealed: bytes) -> bytes:
    return CHUNK_HEADER.pack(CHUNK_VERSION, number, index) + sealed


@dataclass(frozen=True)
class Chunk:
    """A binary message read: whose chunk, which one, and its sealed bytes."""

    number: int
    index: int
    sealed: bytes


def unpack_chunk(data: bytes) -> Chunk:
    if len(data) > MAX_CHUNK_MESSAGE:
        raise ProtocolError("The chunk is larger than a chunk can be.", code="frame_too_large")
    if len(data) < CHUNK_HEADER.size + SEAL_OVERHEAD:
        raise ProtocolError("The chunk is shorter than its header and seal.")
    version, number, index = CHUNK_HEADER.unpack_from(data)
    if version != CHUNK_VERSION:
        raise ProtocolError(f"Unknown chunk version {version}.")
    return Chunk(number, index, data[CHUNK_HEADER.size :])


class FilesFrame(Frame):
    """A text frame of the `files` channel."""


@CHANNEL.register
@dataclass(frozen=True)
class FileAck(FilesFrame):
    """The receiver's user has taken (downloaded) every chunk before `next` (cumulative):
    the sender forgets them and may take that much more from its user. The sender keeps
    at most its window (16 MiB) of chunks not acknowledged, so a slow download slows it."""

    TYPE: ClassVar[str] = "file-ack"
    file_id: FILE_ID
    next: int


@CHANNEL.register
@dataclass(frozen=True)
class FileResume(FilesFrame):
    """On a new connection (after a reconnect), for each transfer under way: the receiver
    has every chunk before `next`; the sender sends again from there (it sends nothing of
    that transfer on the new connection before this). It follows a `file-ack` of how far
    the download went (the acks sent on the old connection may have been lost with it);
    for a file already downloaded, that `file-ack` alone."""

    TYPE: ClassVar[str] = "file-resume"
    file_id: FILE_ID
    next: int
