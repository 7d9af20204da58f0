"""Every orbitd setting, in one table: the dataclass fields below.

A setting comes from (lowest to highest priority) its default, a TOML file,
the environment (``ORBIT_<NAME>``) and command-line flags. The settings table
in docs/orbitd.md is generated from here and tested against it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orbitcore.paths import daemon_dir
from orbitcore.settings_table import SettingsError, load, markdown, rows
from orbitcore.settings_table import setting as _s

from . import event_loop
from .media import parse_audio_source, parse_video_source

ENV_PREFIX = "ORBIT_"
CONFIG_FILE_NAME = "orbitd.toml"
PROFILE_PATTERN = re.compile(r"[a-z0-9_-]{1,32}")
ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")
LOG_LEVELS = frozenset({"debug", "info", "warning", "error"})
EVENT_LOOPS = frozenset({"asyncio", "uvloop"})
DISPLAY_NAME_MAX_CHARS = 40
DISPLAY_NAME_MAX_BYTES = 63  # one DNS-SD TXT value stays small; one DNS label at most


@dataclass(frozen=True)
class Config:
    host: str = _s(
        "127.0.0.1", "Address of the local UI; must be a loopback address (the UI is local-only)."
    )
    port: int = _s(7170, "UI port (0 picks a free one).")
    profile: str = _s(
        "default",
        "Name of this daemon's profile (`[a-z0-9_-]{1,32}`); separate profiles have separate data and config dirs, so two daemons run on one machine.",
    )
    data_dir: str = _s(
        "",
        "Directory for the identity key and the UI secret (default: $XDG_DATA_HOME/chatorbit/<profile>).",
    )
    rendezvous: str = _s("http://127.0.0.1:50001", "Rendezvous URL (http or https).")
    rendezvous_ca_file: str = _s(
        "",
        "PEM file of a CA to trust for an `https://` rendezvous, besides the system's (a private CA or a test's); empty: the system's alone.",
    )
    ice_servers: list[str] = _s(
        [],
        "STUN/TURN URLs (`stun:host:port`, `turn:host:port`); none by default so nothing is contacted that the user did not name.",
    )
    ice_username: str = _s("", "TURN user name.")
    ice_credential: str = _s("", "TURN credential.")
    ice_loopback: bool = _s(
        False,
        "Offer a 127.0.0.1 ICE candidate and no other (one-machine use: tests and the demo).",
    )
    ice_relay_only: bool = _s(
        False,
        "Hide my address from the other person: connect only through a TURN server (the peer learns only its address); the UI's switch overrides it. Needs a TURN server; LAN sessions never use one.",
    )
    connect_timeout_seconds: float = _s(
        20.0,
        "How long the first connection may take before the session ends (`connect_timeout`); with several ICE plans (and `reconnect` on both sides) each plan gets its share, at least 10 s, then the next is tried.",
    )
    file_size_max_bytes: int = _s(
        4294967296,
        "The largest file this daemon sends or receives in a session, in bytes (default 4 GiB); announced to the other daemon, whose own limit holds for what it receives.",
    )
    video_source: str = _s(
        "",
        "Video to send in calls instead of the browser's camera: `testpattern`, `file:PATH` or `device:/dev/videoN` (empty: the browser).",
    )
    audio_source: str = _s(
        "",
        "Audio to send in calls instead of the browser's microphone: `tone`, `silence`, `file:PATH` or `device:NAME` (empty: the browser).",
    )
    log_level: str = _s("info", "Log level: debug, info, warning or error.")
    event_loop: str = _s(
        "asyncio",
        "The daemon's event loop: `asyncio`, or `uvloop` (installed with `chatorbit[uvloop]`; a file moves with about a third less CPU, the idle daemon takes about 2 MiB more).",
    )
    lan_enabled: bool = _s(
        True,
        "Allow LAN mode: the Nearby switch, with which the user makes this daemon visible (zeroconf, `_chatorbit._tcp`, on private LAN interfaces) for 10 minutes or always on remembered networks; it is off until the user turns it on. `false`: no LAN mode at all, the switch is disabled.",
    )
    lan_visible_seconds: float = _s(
        600.0,
        'How long "visible for 10 minutes" lasts, in seconds (10 to 86400; tests shorten it).',
    )
    lan_interfaces: list[str] = _s(
        [],
        "IPv4 addresses of the interfaces to use on the LAN (empty: every interface with a private address: 10/8, 172.16/12, 192.168/16 or link-local 169.254/16; never a public one).",
    )
    lan_port: int = _s(
        7171,
        "Port of the LAN listener, bound only to the LAN addresses (the UI stays on `host`); 0 picks a free one.",
    )
    display_name: str = _s(
        "",
        "Name shown to nearby people on the LAN, at most 40 characters (default: the profile name).",
    )

    @property
    def lan_name(self) -> str:
        """The name nearby people see: `display_name`, else the profile name."""
        return self.display_name or self.profile

    def data_path(self, environ: Mapping[str, str] | None = None) -> Path:
        """The data directory: `data_dir`, else $XDG_DATA_HOME/chatorbit/<profile>."""
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        return daemon_dir("data", self.profile, environ)


def settings_table() -> list[tuple[str, Any, str]]:
    return rows(Config)


def settings_markdown() -> str:
    return markdown(Config, ENV_PREFIX)


def check_profile(profile: str) -> str:
    if not PROFILE_PATTERN.fullmatch(profile):
        raise SettingsError(
            f"profile: {profile!r} is not a profile name; use 1 to 32 of a-z, 0-9, '_' and '-'"
        )
    return profile


def _early_profile(environ: Mapping[str, str] | None, overrides: Mapping[str, Any] | None) -> str:
    env = os.environ if environ is None else environ
    profile = (overrides or {}).get("profile") or env.get(ENV_PREFIX + "PROFILE") or "default"
    return check_profile(str(profile))


def config_file_path(
    explicit: str | None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> str | None:
    """The TOML file to read: `--config FILE`, else the profile's file if it exists.

    The profile's file is `$XDG_CONFIG_HOME/chatorbit/<profile>/orbitd.toml`, the
    profile coming from the flags, else the environment, else the default.
    """
    if explicit:
        return explicit
    profile = _early_profile(environ, overrides)
    path = daemon_dir("config", profile, environ)
    return str(path / CONFIG_FILE_NAME) if (path / CONFIG_FILE_NAME).is_file() else None


def load_settings(
    config_flag: str | None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """What `orbitd` runs with: finds the settings file, then `load_config`."""
    toml_path = config_file_path(config_flag, environ=environ, overrides=overrides)
    config = load_config(toml_path=toml_path, environ=environ, overrides=overrides)
    if not config_flag and toml_path and config.profile != _early_profile(environ, overrides):
        raise SettingsError(
            f"config file {toml_path}: sets profile {config.profile!r} but belongs to profile "
            f"{_early_profile(environ, overrides)!r}"
        )
    return config


def load_config(
    *,
    toml_path: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    config = load(
        Config,
        ENV_PREFIX,
        toml_path=toml_path,
        section="orbitd",
        environ=environ,
        overrides=overrides,
    )
    validate(config)
    return config


def validate(config: Config) -> None:
    try:
        loopback = ipaddress.ip_address(config.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SettingsError(
            f"host: {config.host!r} is not a loopback address; the UI is local-only, "
            "so use 127.0.0.1 (or ::1)"
        )
    if not 0 <= config.port <= 65535:
        raise SettingsError("port: must be 0..65535")
    check_profile(config.profile)
    url = urlsplit(config.rendezvous)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise SettingsError(
            f"rendezvous: {config.rendezvous!r} is not an http:// or https:// URL with a host"
        )
    _validate_ca_file(config.rendezvous_ca_file)
    for server in config.ice_servers:
        if not server.startswith(ICE_SCHEMES) or len(server.split(":", 1)[1]) == 0:
            raise SettingsError(
                f"ice_servers: {server!r} is not a stun:, stuns:, turn: or turns: URL"
            )
    if not config.connect_timeout_seconds > 0:
        raise SettingsError("connect_timeout_seconds: must be more than 0")
    if not 0 <= config.file_size_max_bytes <= 2**53:
        raise SettingsError("file_size_max_bytes: must be 0..9007199254740992")
    for name, parse in (("video_source", parse_video_source), ("audio_source", parse_audio_source)):
        spec = getattr(config, name)
        if spec:
            try:
                parse(spec)
            except ValueError as exc:
                raise SettingsError(f"{name}: {exc}") from None
    if config.log_level.lower() not in LOG_LEVELS:
        raise SettingsError("log_level: one of debug, info, warning, error")
    if config.event_loop not in EVENT_LOOPS:
        raise SettingsError("event_loop: asyncio or uvloop")
    if not event_loop.available(config.event_loop):
        raise SettingsError(event_loop.UVLOOP_MISSING)
    _validate_lan(config)


def _validate_ca_file(path: str) -> None:
    """`rendezvous_ca_file`, when set, names a readable PEM file of certificates."""
    if not path:
        return
    try:
        ssl.create_default_context(cafile=path)
    except FileNotFoundError:
        raise SettingsError(f"rendezvous_ca_file: {path!r} does not exist") from None
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(
            f"rendezvous_ca_file: {path!r} is not a PEM file of certificates ({exc})"
        ) from None


def _validate_lan(config: Config) -> None:
    for address in config.lan_interfaces:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            ip = None
        if not isinstance(ip, ipaddress.IPv4Address):
            raise SettingsError(
                f"lan_interfaces: {address!r} is not an IPv4 address; name the address of a "
                "LAN interface (for example 192.168.1.20)"
            )
        if ip.is_unspecified or ip.is_multicast or ip == ipaddress.IPv4Address("255.255.255.255"):
            raise SettingsError(
                f"lan_interfaces: {address!r} is not an interface address; name the address "
                "of one interface (for example 192.168.1.20)"
            )
    if len(set(config.lan_interfaces)) != len(config.lan_interfaces):
        raise SettingsError("lan_interfaces: an address is named twice")
    if not 10 <= config.lan_visible_seconds <= 86400:
        raise SettingsError("lan_visible_seconds: must be 10..86400")
    if not 0 <= config.lan_port <= 65535:
        raise SettingsError("lan_port: must be 0..65535")
    if config.lan_port and config.lan_port == config.port:
        raise SettingsError(f"lan_port: {config.lan_port} is the UI's port; pick another one")
    check_display_name(config.display_name)


def check_display_name(name: str) -> str:
    """A display name: empty (use the profile name) or 1 to 40 printable characters."""
    if not name:
        return name
    if name != name.strip():
        raise SettingsError("display_name: must not start or end with spaces")
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise SettingsError("display_name: must not contain control or format characters")
    if len(name) > DISPLAY_NAME_MAX_CHARS or len(name.encode()) > DISPLAY_NAME_MAX_BYTES:
        raise SettingsError(
            f"display_name: at most {DISPLAY_NAME_MAX_CHARS} characters "
            f"({DISPLAY_NAME_MAX_BYTES} bytes in UTF-8)"
        )
    return name


__all__ = [
    "Config",
    "SettingsError",
    "check_display_name",
    "config_file_path",
    "load_config",
    "load_settings",
    "settings_markdown",
    "settings_table",
]
