"""orbitd settings (one table in code; the doc matches it) and the key files in the data dir."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from orbitd.identity import (
    IdentityError,
    load_or_create_identity,
)
from orbitd.settings import (
    SettingsError,
    config_file_path,
    load_config,
    load_settings,
    settings_markdown,
    settings_table,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "orbitd.md"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_doc_shows_every_setting_exactly() -> None:
    assert settings_markdown() in DOC.read_text(), (
        "docs/orbitd.md's settings table is out of date: paste `orbitd settings` into it"
    )


def test_the_readme_shows_the_relay_only_setting_as_the_table_does() -> None:
    row = next(r for r in settings_markdown().splitlines() if r.startswith("| `ice_relay_only`"))
    assert row in (DOC.parent.parent / "README.md").read_text()


def test_every_setting_has_help() -> None:
    for name, _default, help_text in settings_table():
        assert help_text.strip(), name


def test_safe_defaults() -> None:
    config = load_config(environ={})
    assert (config.host, config.port, config.profile) == ("127.0.0.1", 7170, "default")
    assert config.ice_servers == []  # nothing is contacted that the user did not name
    assert config.ice_loopback is False
    assert config.rendezvous == "http://127.0.0.1:50001"
    assert config.connect_timeout_seconds == 20.0


def test_priority_defaults_toml_env_flags(tmp_path: Path) -> None:
    toml = tmp_path / "orbitd.toml"
    toml.write_text(
        '[orbitd]\nport = 6000\nprofile = "alice"\nice_servers = ["stun:stun.example:3478"]\n'
        'log_level = "debug"\nconnect_timeout_seconds = 5\n'
    )
    env = {"ORBIT_PORT": "7000", "ORBIT_ICE_LOOPBACK": "yes", "ORBIT_LOG_LEVEL": "error"}
    config = load_config(
        toml_path=str(toml), environ=env, overrides={"log_level": "warning", "port": None}
    )
    assert config.profile == "alice"  # TOML over default
    assert config.ice_servers == ["stun:stun.example:3478"]
    assert config.connect_timeout_seconds == 5.0
    assert config.port == 7000  # env over TOML; an unset flag does not count
    assert config.ice_loopback is True
    assert config.log_level == "warning"  # flag over env
    assert config.host == "127.0.0.1"


def test_env_lists_are_comma_separated() -> None:
    env = {"ORBIT_ICE_SERVERS": "stun:a.example:3478, turn:b.example:3478?transport=udp"}
    config = load_config(environ=env)
    assert config.ice_servers == ["stun:a.example:3478", "turn:b.example:3478?transport=udp"]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "localhost", "example.com", ""])
def test_a_non_loopback_host_is_refused(host: str) -> None:
    with pytest.raises(SettingsError, match="local-only"):
        load_config(environ={}, overrides={"host": host})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1"])
def test_loopback_hosts_are_accepted(host: str) -> None:
    assert load_config(environ={}, overrides={"host": host}).host == host


@pytest.mark.parametrize("profile", ["", "Alice", "../etc", "a/b", "a b", "x" * 33, "ünï"])
def test_a_bad_profile_name_is_refused(profile: str) -> None:
    with pytest.raises(SettingsError, match="profile"):
        load_config(environ={}, overrides={"profile": profile})
    if profile:
        with pytest.raises(SettingsError, match="profile"):
            config_file_path(None, environ={}, overrides={"profile": profile})


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"ORBIT_PORT": "many"}, "'port'"),
        ({"ORBIT_PORT": "70000"}, "port"),
        ({"ORBIT_RENDEZVOUS": "ftp://r.example"}, "rendezvous"),
        ({"ORBIT_RENDEZVOUS": "https://"}, "rendezvous"),
        ({"ORBIT_ICE_SERVERS": "stun.example:3478"}, "ice_servers"),
        ({"ORBIT_ICE_LOOPBACK": "perhaps"}, "ice_loopback"),
        ({"ORBIT_CONNECT_TIMEOUT_SECONDS": "0"}, "connect_timeout_seconds"),
        ({"ORBIT_LOG_LEVEL": "chatty"}, "log_level"),
    ],
)
def test_bad_settings_say_which_and_why(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        load_config(environ=env)


def test_unknown_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    toml = tmp_path / "orbitd.toml"
    toml.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        load_config(toml_path=str(toml), environ={})


def test_the_config_file_is_found_per_profile(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    alice = tmp_path / "chatorbit" / "alice" / "orbitd.toml"
    alice.parent.mkdir(parents=True)
    alice.write_text('[orbitd]\nrendezvous = "https://rv.example"\n')
    assert config_file_path(None, environ=env) is None  # the default profile has no file
    assert config_file_path(None, environ=env, overrides={"profile": "alice"}) == str(alice)
    by_env = env | {"ORBIT_PROFILE": "alice"}
    assert config_file_path(None, environ=by_env) == str(alice)
    assert config_file_path("/some/where.toml", environ=env) == "/some/where.toml"
    config = load_settings(None, environ=env, overrides={"profile": "alice"})
    assert config.rendezvous == "https://rv.example"
    assert load_settings(None, environ=env).rendezvous == "http://127.0.0.1:50001"


def test_a_profile_file_may_not_switch_profile(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "ORBIT_PROFILE": "alice"}
    alice = tmp_path / "chatorbit" / "alice" / "orbitd.toml"
    alice.parent.mkdir(parents=True)
    alice.write_text('profile = "bob"\n')
    # The profile's own file cannot move it: the environment (or a flag) names it and wins.
    assert load_settings(None, environ=env).profile == "alice"
    (tmp_path / "chatorbit" / "default").mkdir()
    (tmp_path / "chatorbit" / "default" / "orbitd.toml").write_text('profile = "bob"\n')
    with pytest.raises(SettingsError, match="belongs to profile 'default'"):
        load_settings(None, environ={"XDG_CONFIG_HOME": str(tmp_path)})
    # An explicit --config file may name any profile.
    assert load_settings(str(alice), environ={}).profile == "bob"


def test_data_path_defaults_to_xdg_per_profile(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path)}
    alice = load_config(environ={}, overrides={"profile": "alice"})
    bob = load_config(environ={}, overrides={"profile": "bob"})
    assert alice.data_path(env) == tmp_path / "chatorbit" / "alice"
    assert bob.data_path(env) == tmp_path / "chatorbit" / "bob"
    home = Path.home() / ".local" / "share" / "chatorbit" / "alice"
    assert alice.data_path({}) == home
    assert alice.data_path({"XDG_DATA_HOME": "relative/dir"}) == home  # the XDG spec
    explicit = load_config(environ={}, overrides={"data_dir": "~/orbit"})
    assert explicit.data_path(env) == Path.home() / "orbit"


def test_identity_is_made_once_with_private_modes(tmp_path: Path) -> None:
    data = tmp_path / "chatorbit" / "alice"
    first = load_or_create_identity(data)
    key_file = data / "identity.key"
    assert mode(data) == 0o700
    assert mode(key_file) == 0o600
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert [p.name for p in data.iterdir()] == ["identity.key"]  # no temporary file left
    again = load_or_create_identity(data)
    assert again.fingerprint == first.fingerprint
    assert again.public_key == first.public_key and len(first.public_key) == 32
    assert len(first.fingerprint) == 64 and int(first.fingerprint, 16) >= 0
    groups = first.short_fingerprint.split(" ")
    assert len(groups) == 8 and all(len(g) == 4 for g in groups)
    assert "".join(groups) == first.fingerprint[:32]
    assert first.private_key is not None and "private" not in repr(first).lower()
    signature = again.sign(b"hello")
    Ed25519PublicKey.from_public_bytes(first.public_key).verify(signature, b"hello")


def test_two_profiles_get_separate_dirs_and_keys(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path)}
    dirs = [
        load_config(environ={}, overrides={"profile": p}).data_path(env) for p in ("alice", "bob")
    ]
    assert dirs[0] != dirs[1]
    alice, bob = (load_or_create_identity(d) for d in dirs)
    assert alice.fingerprint != bob.fingerprint


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    load_or_create_identity(tmp_path)
    os.chmod(tmp_path / "identity.key", 0o644)
    with pytest.raises(IdentityError, match="chmod 600"):
        load_or_create_identity(tmp_path)


def test_a_broken_key_file_is_reported(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "identity.key", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not a key")
    os.close(fd)
    with pytest.raises(IdentityError, match=r"identity\.key"):
        load_or_create_identity(tmp_path)


def test_an_existing_data_dir_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    load_or_create_identity(shared)
    assert mode(shared) == 0o755  # never chmod a directory the user chose
    assert mode(shared / "identity.key") == 0o600
