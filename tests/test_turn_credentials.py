"""TURN REST credentials (rendezvous.turn) and the rendezvous's ICE settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from orbitcore.protocol import relay
from rendezvous.settings import SettingsError, load_config
from rendezvous.turn import mint, random_id, turn_credential
from tests.test_cli import run_cli

NOW = datetime(2026, 1, 20, 10, 0, tzinfo=UTC)  # 1768903200
SECRET = "hush-hush-secret"


def test_the_credential_is_the_base64_hmac_sha1_of_the_user_name_under_the_secret() -> None:
    # Known vectors, computed independently with
    # `printf %s USER | openssl dgst -sha1 -hmac SECRET -binary | base64`.
    assert turn_credential("north-wind", "1700000000:abc") == "skG9UHs7kLUTdO6hRUMTYUovESA="
    assert turn_credential("abc", "1433895918506:my_username") == "5e+hy3iUszpDRxE8P31avM7tUSY="


def test_mint_gives_turn_with_an_expiring_user_name_and_stun_without_credentials() -> None:
    ice = mint(
        "north-wind",
        600,
        NOW,
        turn_urls=["turn:turn.example.org:3478", "turns:turn.example.org:5349?transport=tcp"],
        stun_urls=["stun:stun.example.org"],
        make_id=lambda: "r4nd0m",
    )
    assert ice is not None
    expiry = 1768903200 + 600
    user = f"{expiry}:r4nd0m"
    digest = hmac.new(b"north-wind", user.encode(), hashlib.sha1).digest()
    assert ice.to_dict() == {
        "type": "ice-servers",
        "ice_servers": [
            {
                "urls": ["turn:turn.example.org:3478", "turns:turn.example.org:5349?transport=tcp"],
                "username": user,
                "credential": base64.b64encode(digest).decode(),
            },
            {"urls": ["stun:stun.example.org"]},
        ],
        "ttl_seconds": 600,
        "expires_at": expiry,
    }
    # What goes on the wire is what the relay channel reads back.
    assert relay.CHANNEL.parse(ice.encode()) == ice


def test_mint_without_turn_has_no_expiry_and_without_anything_gives_nothing() -> None:
    stun_only = mint("", 600, NOW, turn_urls=[], stun_urls=["stun:stun.example.org:3478"])
    assert stun_only is not None
    assert stun_only.to_dict() == {
        "type": "ice-servers",
        "ice_servers": [{"urls": ["stun:stun.example.org:3478"]}],
    }
    assert mint("", 600, NOW, turn_urls=[], stun_urls=[]) is None


def test_each_mint_has_a_new_random_id_and_no_identity() -> None:
    first, second = random_id(), random_id()
    assert first != second
    assert ":" not in first and len(first) >= 16


def test_a_credential_is_never_in_a_repr() -> None:
    ice = mint("north-wind", 600, NOW, turn_urls=["turn:127.0.0.1:3478"], make_id=lambda: "r")
    assert ice is not None
    server = ice.ice_servers[0]
    assert server.credential is not None and server.credential not in repr(ice)
    config = load_config(
        environ={},
        overrides={"turn_urls": "turn:127.0.0.1", "turn_shared_secret": "north-wind-secret"},
    )
    assert "north-wind-secret" not in repr(config)


@pytest.mark.parametrize(
    "overrides",
    [
        {"stun_urls": "stun:stun.example.org", "turn_urls": "turn:[::1]:3478?transport=udp"},
        {"turn_urls": "turns:turn.example.org:5349?transport=tcp,turn:10.0.0.1"},
    ],
)
def test_well_formed_ice_urls_are_accepted(overrides: dict[str, str]) -> None:
    overrides = {"turn_shared_secret": "s"} | overrides
    config = load_config(environ={}, overrides=overrides)
    assert config.turn_urls


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"stun_urls": "http://stun.example.org"}, "stun_urls: 'http://stun.example.org'"),
        ({"stun_urls": "turn:x.org"}, "the scheme must be `stun:` or `stuns:`"),
        ({"stun_urls": "stun:x.org?transport=tcp"}, "a STUN URL has no transport"),
        ({"turn_urls": "stun:x.org", "turn_shared_secret": SECRET}, "`turn:` or `turns:`"),
        ({"turn_urls": "turn:x.org:99999", "turn_shared_secret": SECRET}, "port must be 1..65535"),
        ({"turn_urls": "turn:x.org?transport=sctp", "turn_shared_secret": SECRET}, "expected"),
        ({"turn_urls": "turn:user@x.org", "turn_shared_secret": SECRET}, "expected"),
        ({"turn_urls": "turn:x.org"}, "set turn_shared_secret too"),
        ({"turn_shared_secret": SECRET}, "set without turn_urls"),
        (
            {
                "turn_urls": "turn:x.org",
                "turn_shared_secret": SECRET,
                "turn_credential_ttl_seconds": 0,
            },
            "turn_credential_ttl_seconds: must be at least 1",
        ),
    ],
)
def test_malformed_ice_settings_are_refused_at_start_with_a_clear_message(
    overrides: dict[str, object], says: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        load_config(environ={}, overrides=overrides)
    assert says in str(refused.value)
    assert SECRET not in str(refused.value)  # the secret is never echoed


def test_the_rendezvous_refuses_to_start_with_a_malformed_turn_url() -> None:
    done = run_cli("--turn-urls", "turn://x.org", "--turn-shared-secret", SECRET)
    assert done.returncode == 2
    assert "turn_urls: 'turn://x.org'" in done.stderr and SECRET not in done.stderr
