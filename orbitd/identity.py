"""The daemon's long-lived secret on disk: its Ed25519 identity key.

It lives in the profile's data directory (mode 0700) as a file of mode 0600,
made on first start and read on every later one. (The UI's login cookie is not
on disk: orbitd/security.py keeps each login's value in memory.) A file is written whole under
a temporary name and then hard-linked into place, so it never exists half
written or with a wider mode, and two daemons starting at once keep one key.

Only LAN mode signs with the identity key, so reading it does not load
`cryptography` (about 10 MiB of an idle daemon): `ed25519` reads the file and
derives the public key; `Identity.private_key` loads the library on first use.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from orbitcore.files import write_atomic

from . import ed25519

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

IDENTITY_FILE = "identity.key"


class IdentityError(RuntimeError):
    """A key file could not be made or read; the message names the file."""


@dataclass(frozen=True)
class Identity:
    """This daemon's identity: the Ed25519 key pair and its fingerprint."""

    seed: bytes = field(repr=False, compare=False)
    """The private key, raw (32 bytes)."""
    public_key: bytes  # raw, 32 bytes

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        return cls(seed=seed, public_key=ed25519.public_key(seed))

    @classmethod
    def from_private_key(cls, key: Ed25519PrivateKey) -> Identity:
        from cryptography.hazmat.primitives import serialization

        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return cls.from_seed(seed)

    @cached_property
    def private_key(self) -> Ed25519PrivateKey:
        """The key as `cryptography`'s object, which loads the library (on the first
        signature: LAN mode). Its public key must be the one `ed25519` derived."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.from_private_bytes(self.seed)
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        if raw != self.public_key:
            raise IdentityError("the identity's public key does not match its private key")
        return key

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the raw public key (64 hex digits)."""
        return hashlib.sha256(self.public_key).hexdigest()

    @property
    def short_fingerprint(self) -> str:
        """The first 16 bytes of the fingerprint in groups of four: `ab12 cd34 ...`."""
        head = self.fingerprint[:32]
        return " ".join(head[i : i + 4] for i in range(0, len(head), 4))

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)


def signature_valid(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is `public_key`'s Ed25519 signature of `message` (a key that
    is not 32 bytes, or any other malformed input, is simply not valid)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (ValueError, InvalidSignature):
        return False
    return True


def ensure_data_dir(path: Path) -> Path:
    """Make the data directory (mode 0700) if it is missing; an existing one is left as is."""
    if not path.is_dir():
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.mkdir(mode=0o700)
            os.chmod(path, 0o700)  # whatever the umask said
        except FileExistsError:
            pass  # another process made it at the same moment
        except OSError as exc:
            raise IdentityError(f"cannot make the data directory {path}: {exc}") from None
    return path


def _read_private(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        if stat.S_IMODE(os.fstat(fh.fileno()).st_mode) & 0o077:
            raise IdentityError(
                f"{path} is readable by other users; run `chmod 600 {path}` and start again"
            )
        return fh.read()


def _load_or_create(data_dir: Path, name: str, make: bytes) -> bytes:
    path = ensure_data_dir(data_dir) / name
    try:
        if not path.exists():
            write_atomic(path, make, keep=True)  # a daemon starting at once may win
        return _read_private(path)
    except OSError as exc:
        raise IdentityError(f"cannot use {path}: {exc}") from None


def load_or_create_identity(data_dir: Path) -> Identity:
    """The identity in `data_dir/identity.key` (PEM PKCS8), made on first use."""
    fresh = ed25519.seed_to_pem(ed25519.new_seed())
    pem = _load_or_create(data_dir, IDENTITY_FILE, fresh)
    seed = ed25519.pem_to_seed(pem)
    if seed is not None:  # the form this daemon writes: read without `cryptography`
        return Identity.from_seed(seed)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise IdentityError(f"{data_dir / IDENTITY_FILE} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"{data_dir / IDENTITY_FILE} is not an Ed25519 key")
    return Identity.from_private_key(key)
