"""The shared atomic writer and the XDG directories."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from orbitcore.files import write_atomic
from orbitcore.paths import daemon_dir, rendezvous_dir, xdg_home


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_write_replaces_the_file_whole_with_mode_0600_and_leaves_no_temporary(
    tmp_path: Path,
) -> None:
    target = tmp_path / "prefs.json"
    target.write_text("old")
    os.chmod(target, 0o644)
    old = os.umask(0)  # a permissive umask must not widen the file
    try:
        assert write_atomic(target, b"new")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"new" and mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["prefs.json"]


def test_keep_leaves_an_existing_file_alone(tmp_path: Path) -> None:
    target = tmp_path / "identity.key"
    assert write_atomic(target, b"first", keep=True)
    assert not write_atomic(target, b"second", keep=True)
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["identity.key"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "peers.json"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["peers.json"]


def test_xdg_homes_follow_the_environment_and_ignore_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    env = {"XDG_DATA_HOME": "/srv/data", "XDG_CONFIG_HOME": "relative/config"}
    assert xdg_home("data", env) == Path("/srv/data")
    assert xdg_home("config", env) == tmp_path / ".config"  # the spec: relative is ignored
    assert xdg_home("state", env) == tmp_path / ".local" / "state"
    assert daemon_dir("data", "work", env) == Path("/srv/data/chatorbit/work")
    assert rendezvous_dir("data", {}) == tmp_path / ".local" / "share" / "chatorbit-rendezvous"
