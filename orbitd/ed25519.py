"""An Ed25519 private key's public half, computed without loading `cryptography`.

The identity key is read on every start, but only LAN mode signs with it, and
`cryptography`'s native module is about 10 MiB of an idle daemon's memory. So
the daemon reads the key file (PKCS#8, as `cryptography` writes it) and derives
the public key here, with the arithmetic of RFC 8032's reference code (§5.1.5,
§6). Signing still loads `cryptography` (`Identity.private_key`, which checks
that the library derives the same public key).

It runs once per start, on this machine's own key: it is not constant-time, and
nothing here is used on data from the network.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets

P = 2**255 - 19
D = -121665 * pow(121666, P - 2, P) % P
# The base point B of RFC 8032, §5.1, in extended coordinates (X, Y, Z, T), x*y = T/Z.
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960
BASE = (_BX, _BY, 1, _BX * _BY % P)

SEED_BYTES = 32
# PKCS#8 v1 of an Ed25519 key (RFC 8410 §7): this DER prefix, then the 32-byte seed.
PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
PEM_BEGIN, PEM_END = b"-----BEGIN PRIVATE KEY-----", b"-----END PRIVATE KEY-----"

Point = tuple[int, int, int, int]


def _add(p: Point, q: Point) -> Point:
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * p[3] * q[3] * D % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f, g * h, f * g, e * h)


def _multiply(scalar: int, point: Point) -> Point:
    out: Point = (0, 1, 1, 0)  # the neutral element
    while scalar > 0:
        if scalar & 1:
            out = _add(out, point)
        point = _add(point, point)
        scalar >>= 1
    return out


def public_key(seed: bytes) -> bytes:
    """The raw 32-byte public key of a raw 32-byte private key (RFC 8032 §5.1.5)."""
    if len(seed) != SEED_BYTES:
        raise ValueError("an Ed25519 private key is 32 bytes")
    digest = hashlib.sha512(seed).digest()
    scalar = int.from_bytes(digest[:32], "little")
    scalar &= (1 << 254) - 8
    scalar |= 1 << 254
    x, y, z, _ = _multiply(scalar, BASE)
    z_inverse = pow(z, P - 2, P)
    x, y = x * z_inverse % P, y * z_inverse % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def seed_to_pem(seed: bytes) -> bytes:
    """The private key as an unencrypted PKCS#8 PEM file, as `cryptography` writes it."""
    body = base64.encodebytes(PKCS8_PREFIX + seed)
    return PEM_BEGIN + b"\n" + body + PEM_END + b"\n"


def pem_to_seed(pem: bytes) -> bytes | None:
    """The seed of a PEM file in exactly the form `seed_to_pem` writes; None for any
    other form (let `cryptography` read those)."""
    lines = pem.strip().splitlines()
    if len(lines) < 3 or lines[0] != PEM_BEGIN or lines[-1] != PEM_END:
        return None
    try:
        der = base64.b64decode(b"".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(der) != len(PKCS8_PREFIX) + SEED_BYTES or not der.startswith(PKCS8_PREFIX):
        return None
    return der[len(PKCS8_PREFIX) :]
