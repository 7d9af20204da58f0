"""The identity key read without `cryptography`: `orbitd.ed25519` against RFC 8032 and the
library, and `load_or_create_identity`'s way back to the library for other key files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from orbitd import ed25519
from orbitd.identity import Identity, IdentityError, load_or_create_identity, signature_valid

# RFC 8032 §7.1, TEST 1, 2, 3 and SHA(abc): (secret key, public key).
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
    ),
    (
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
    ),
]


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def pkcs8_pem(key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_key(path: Path, pem: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, pem)
    os.close(fd)


@pytest.mark.parametrize(("secret", "public"), RFC8032)
def test_the_public_key_of_the_rfc_8032_vectors(secret: str, public: str) -> None:
    assert ed25519.public_key(bytes.fromhex(secret)).hex() == public


def test_the_public_key_and_the_pem_file_are_the_ones_cryptography_makes() -> None:
    for _ in range(50):
        seed = ed25519.new_seed()
        key = Ed25519PrivateKey.from_private_bytes(seed)
        assert ed25519.public_key(seed) == raw_public(key)
        assert ed25519.seed_to_pem(seed) == pkcs8_pem(key)
        assert ed25519.pem_to_seed(pkcs8_pem(key)) == seed


def test_only_a_32_byte_seed_has_a_public_key() -> None:
    for size in (0, 31, 33, 64):
        with pytest.raises(ValueError, match="32 bytes"):
            ed25519.public_key(bytes(size))


def test_other_pem_files_are_left_to_cryptography() -> None:
    pem = pkcs8_pem(Ed25519PrivateKey.generate())
    assert ed25519.pem_to_seed(b"a comment\n" + pem) is None
    assert ed25519.pem_to_seed(pkcs8_pem(ec.generate_private_key(ec.SECP256R1()))) is None
    assert ed25519.pem_to_seed(pem.replace(b"PRIVATE KEY", b"PUBLIC KEY")) is None
    assert ed25519.pem_to_seed(pem.replace(b"M", b"*", 1)) is None  # not base64
    assert ed25519.pem_to_seed(b"not a key") is None


def test_an_identity_file_this_daemon_did_not_write_is_read_by_cryptography(
    tmp_path: Path,
) -> None:
    key = Ed25519PrivateKey.generate()
    write_key(tmp_path / "identity.key", b"my key, from elsewhere\n" + pkcs8_pem(key))
    identity = load_or_create_identity(tmp_path)
    assert identity.public_key == raw_public(key)
    signature = identity.sign(b"hello")
    Ed25519PublicKey.from_public_bytes(identity.public_key).verify(signature, b"hello")


def test_an_identity_file_of_another_key_type_is_refused(tmp_path: Path) -> None:
    write_key(tmp_path / "identity.key", pkcs8_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(IdentityError, match="not an Ed25519 key"):
        load_or_create_identity(tmp_path)


def test_a_public_key_that_is_not_the_seeds_is_caught_before_signing() -> None:
    alice, bob = ed25519.new_seed(), ed25519.new_seed()
    forged = Identity(seed=alice, public_key=ed25519.public_key(bob))
    with pytest.raises(IdentityError, match="does not match"):
        forged.sign(b"hello")


def test_signatures_are_checked() -> None:
    identity = Identity.from_seed(ed25519.new_seed())
    other = Identity.from_seed(ed25519.new_seed())
    signature = identity.sign(b"hello")
    assert signature_valid(identity.public_key, signature, b"hello")
    assert not signature_valid(identity.public_key, signature, b"hellO")
    assert not signature_valid(other.public_key, signature, b"hello")
    assert not signature_valid(identity.public_key[:31], signature, b"hello")
    assert not signature_valid(identity.public_key, signature[:63], b"hello")
