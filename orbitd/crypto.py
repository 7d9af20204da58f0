"""The session's cryptography, with no I/O: invite, PAKE, key schedule, sealing, SAS.

The invite is the rendezvous token T and a secret S that never leaves the two
users' hands. SPAKE2 on S (identities bound to T and the seat) gives both
daemons the same key only if both used the same S; HKDF turns it into one
AES-256-GCM key (or HMAC key) per purpose and direction, so nothing sealed one way
can be replayed the other way.

`cryptography` and `spake2` are imported by the functions that use them: an
idle daemon reads invites and seats but loads neither until a session starts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from orbitcore.errors import Refusal

# No 0/o, 1/l: easy to read aloud. 32 symbols, 5 bits each.
SECRET_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # noqa: S105
SECRET_LENGTH = 16  # 80 bits
TOKEN_RE = re.compile(r"[A-Z0-9]{12}")
NONCE_BYTES = 12


class Seat(StrEnum):
    HOST = "host"
    GUEST = "guest"


class InviteError(Refusal):
    """The text is not an invite: the reason says what is wrong with it."""

    def __init__(self, reason: str) -> None:
        super().__init__(422, "invalid_invite", reason)


class SealError(ValueError):
    """A box did not open: wrong key, or someone changed it on the way."""


@dataclass(frozen=True)
class Invite:
    token: str
    secret: str
    keys: tuple[str, str] | None = None
    """LAN: the host's and the guest's identity fingerprints, bound into the PAKE's
    identities, so a session completes only between the two keys each side expects."""

    def __str__(self) -> str:
        return f"{self.token}-{self.secret}"


def new_secret() -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


def parse_invite(text: object) -> Invite:
    """Read an invite typed, pasted or taken from a link (`...#TOKEN-secret`)."""
    if not isinstance(text, str) or not text.strip():
        raise InviteError("Paste the whole invite: a 12-character token, a dash and the secret.")
    value = text.strip().rsplit("#", 1)[-1].rsplit("/", 1)[-1]
    value = re.sub(r"\s+", "", value)
    token, dash, secret = value.partition("-")
    token, secret = token.upper(), secret.lower()
    if not dash or not TOKEN_RE.fullmatch(token):
        raise InviteError(
            "The invite must start with the 12-character token (A-Z, 0-9) and a dash."
        )
    if len(secret) != SECRET_LENGTH or any(c not in SECRET_ALPHABET for c in secret):
        raise InviteError(
            f"The part after the dash must be the {SECRET_LENGTH}-character secret of the invite."
        )
    return Invite(token, secret)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64 text")
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True)
class SessionKeys:
    """Keys for one seat: what it seals with, what it opens with, and the SAS seed."""

    signal_send: bytes
    signal_recv: bytes
    chat_send: bytes
    chat_recv: bytes
    sas_seed: bytes
    mac_send: bytes
    """The key of our messages' keyed `signature` (feature `keyed-signature`)."""
    mac_recv: bytes
    file_send: bytes
    """The key of the file chunks we send (feature `files`)."""
    file_recv: bytes


def _hkdf(key: bytes, salt: bytes, label: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=salt, info=b"chatorbit/v1/" + label.encode()
    ).derive(key)


def key_schedule(shared: bytes, token: str, seat: Seat) -> SessionKeys:
    salt = token.encode()
    purposes = ("signal", "chat", "mac", "file")
    h2g = {p: _hkdf(shared, salt, f"{p}/host->guest") for p in purposes}
    g2h = {p: _hkdf(shared, salt, f"{p}/guest->host") for p in purposes}
    send, recv = (h2g, g2h) if seat is Seat.HOST else (g2h, h2g)
    return SessionKeys(
        signal_send=send["signal"],
        signal_recv=recv["signal"],
        chat_send=send["chat"],
        chat_recv=recv["chat"],
        sas_seed=_hkdf(shared, salt, "sas"),
        mac_send=send["mac"],
        mac_recv=recv["mac"],
        file_send=send["file"],
        file_recv=recv["file"],
    )


class Pake:
    """One SPAKE2 run for one seat; the password is the invite's secret. With the
    invite's `keys` (LAN), each seat's identity also names that seat's key: two sides
    that expect different keys (an impostor's, or a key swapped on the way) derive
    different keys and fail as a wrong code does."""

    def __init__(self, seat: Seat, invite: Invite) -> None:
        host_id, guest_id = f"chatorbit/host/{invite.token}", f"chatorbit/guest/{invite.token}"
        if invite.keys is not None:
            host_id, guest_id = f"{host_id}/{invite.keys[0]}", f"{guest_id}/{invite.keys[1]}"
        ids = {"idA": host_id.encode(), "idB": guest_id.encode()}
        password = invite.secret.encode()
        self.seat = seat
        self.token = invite.token
        from spake2 import SPAKE2_A, SPAKE2_B

        self._spake = SPAKE2_A(password, **ids) if seat is Seat.HOST else SPAKE2_B(password, **ids)
        self.outbound = self._spake.start()

    def finish(self, inbound: bytes) -> SessionKeys:
        from spake2.spake2 import SPAKEError

        try:
            shared = self._spake.finish(inbound)
        except (SPAKEError, ValueError) as exc:
            raise SealError(f"bad key-exchange message: {exc}") from None
        return key_schedule(shared, self.token, self.seat)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(NONCE_BYTES)
    return b64(nonce + AESGCM(key).encrypt(nonce, plaintext, aad))


def open_box(key: bytes, box: object, aad: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        raw = unb64(box)
    except ValueError:
        raise SealError("not a sealed box") from None
    if len(raw) < NONCE_BYTES + 16:
        raise SealError("sealed box too short")
    try:
        return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
    except InvalidTag:
        raise SealError("sealed box does not open: wrong key or changed on the way") from None


def seal_bytes(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM, raw: the nonce, the ciphertext and the tag (a file chunk's seal)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_bytes(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """What `seal_bytes` sealed, or `SealError`."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(sealed) < NONCE_BYTES + 16:
        raise SealError("sealed box too short")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag:
        raise SealError("sealed box does not open: wrong key or changed on the way") from None


def signature(plaintext: str) -> str:
    """The seed's message `signature`: SHA-256 of the plaintext, hex. It reveals a short,
    guessable text to whoever sees the frame: sent only to a peer without
    `keyed-signature`."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def keyed_signature(key: bytes, message_id: str, plaintext: str) -> str:
    """The message `signature` with feature `keyed-signature`: HMAC-SHA256 under the
    sender's MAC key (HKDF of the PAKE, one per direction) of the message id, a zero
    byte and the text, hex (the same 64 digits as the seed's form)."""
    material = message_id.encode() + b"\0" + plaintext.encode()
    return hmac.new(key, material, hashlib.sha256).hexdigest()


def short_auth_string(keys: SessionKeys, host_fingerprint: str, guest_fingerprint: str) -> str:
    """Eight digits both users read to each other; equal only without a man in the middle."""
    material = f"{host_fingerprint.upper()}|{guest_fingerprint.upper()}".encode()
    digest = _hkdf(keys.sas_seed, material, "sas-digits")
    number = int.from_bytes(digest[:8], "big") % 10**8
    text = f"{number:08d}"
    return f"{text[:4]} {text[4:]}"
