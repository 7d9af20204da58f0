"""Every rendezvous setting, in one table: the dataclass fields below.

A setting comes from (lowest to highest priority) its default, a TOML file,
the environment (``ORBIT_RENDEZVOUS_<NAME>``) and command-line flags.
The README's settings table is generated from here and tested against it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orbitcore.paths import rendezvous_dir
from orbitcore.settings_table import SettingsError, load, markdown, rows
from orbitcore.settings_table import setting as _s

ENV_PREFIX = "ORBIT_RENDEZVOUS_"


@dataclass(frozen=True)
class Config:
    host: str = _s("127.0.0.1", "Address to listen on.")
    port: int = _s(50001, "TCP port to listen on (0 picks a free one).")
    data_dir: str = _s(
        "", "Directory for the database (default: $XDG_DATA_HOME/chatorbit-rendezvous)."
    )
    database: str = _s(
        "",
        "SQLite file, `:memory:`, `sqlite:///path` or a `postgresql://` URL (default: `rendezvous.db` in data_dir).",
    )
    token_rate_limit_per_hour: int = _s(10, "Tokens one IP may issue in a sliding hour.")
    join_rate_limit_per_hour: int = _s(
        60,
        "Joins, status look-ups and socket opens one IP may make in a sliding hour; failures count.",
    )
    report_rate_limit_per_hour: int = _s(10, "Abuse reports one IP may file in a sliding hour.")
    admin_login_rate_limit_per_hour: int = _s(
        10, "Admin login attempts one IP may make in a sliding hour."
    )
    ipv6_prefix_length: int = _s(
        64,
        "IPv6 clients count against the limits above by this network prefix (an ISP hands a"
        " home a whole /64, so one client may rotate through it); 128 counts each address.",
    )
    rate_limit_keys_max: int = _s(
        50000,
        "Most (limit, client) entries the rate limiter keeps in memory; past it the least"
        " recently seen are forgotten (bounds memory under a flood of rotating addresses).",
    )
    admin_password_hash: str = _s(
        "",
        "Admin password hash from `orbit-rendezvous hash-password`; empty disables the admin API.",
    )
    admin_session_minutes: int = _s(60, "How long an admin login stays valid.")
    cors_origins: list[str] = _s(
        [], "Origins allowed to call the API from a browser (exact match; never `*`)."
    )
    trusted_proxies: list[str] = _s(
        [], "Proxy addresses or CIDRs whose X-Forwarded-For is believed."
    )
    ws_max_message_bytes: int = _s(
        65536, "Largest signaling message a socket may send; larger closes it with 1009."
    )
    ws_messages_per_second: float = _s(20.0, "Sustained signaling messages per second per socket.")
    ws_message_burst: int = _s(100, "Signaling messages a socket may send in a burst.")
    redis_url: str = _s(
        "",
        "Redis shared by several instances (`redis://host:port/0`, `rediss://`, `unix:///path`):"
        " the relay between instances, held messages, presence, rate limits. Empty: one instance,"
        " all in memory.",
    )
    instance_name: str = _s(
        "",
        "This instance's name among those sharing Redis (its relay channel, logs, /metrics);"
        " empty: host name and port.",
    )
    held_messages_max: int = _s(64, "Messages held for a peer that is not connected yet.")
    held_bytes_max: int = _s(262144, "Bytes held for a peer that is not connected yet.")
    stun_urls: list[str] = _s(
        [], "STUN servers handed to each participant (`stun:host[:port]`); empty sends none."
    )
    turn_urls: list[str] = _s(
        [],
        "TURN servers handed to each participant with time-limited credentials"
        " (`turn:` or `turns:host[:port]`, `?transport=udp` or `tcp` allowed); needs turn_shared_secret.",
    )
    turn_shared_secret: str = field(
        default="",
        repr=False,
        metadata={
            "help": "The TURN server's `static-auth-secret` (coturn `use-auth-secret`);"
            " never logged or shown. Prefer the environment or the TOML file to a flag."
        },
    )
    turn_credential_ttl_seconds: int = _s(
        3600, "How long handed-out TURN credentials are valid; daemons ask for fresh ones before."
    )
    cleanup_interval_seconds: float = _s(
        300.0, "How often expired sessions, old sessions and rate-limit state are swept."
    )
    ended_retention_days: float = _s(7.0, "Days an ended session is kept before it is deleted.")
    smtp_host: str = _s("", "SMTP server for new-report notices; empty disables them.")
    smtp_port: int = _s(25, "SMTP port.")
    smtp_starttls: bool = _s(False, "Use STARTTLS with the SMTP server.")
    smtp_username: str = _s("", "SMTP login name (optional).")
    smtp_password: str = _s("", "SMTP password (optional).")
    smtp_from: str = _s("chatorbit@localhost", "Sender address of report notices.")
    smtp_to: list[str] = _s([], "Recipients of report notices.")
    install_source: str = _s(
        "chatorbit",
        "What the invite page (`/join`) tells a newcomer to `pipx install`: the package name,"
        " or the URL of a wheel this server's operator offers.",
    )
    gc_thaw_minutes: float = _s(
        60.0,
        "Full garbage collections walk only the objects made since the last one (its survivors"
        " are frozen), so holding many sockets does not stall the relay; every this many minutes"
        " one full collection walks everything and frees cyclic garbage among frozen objects."
        " 0: Python's own collector.",
    )
    log_level: str = _s("info", "Log level: debug, info, warning or error.")
    ttl_minute_seconds: float = _s(
        60.0, "Seconds in one TTL minute. Leave at 60; tests and demos shorten it."
    )

    def database_path(self) -> str:
        if self.database:
            return self.database
        return str(Path(self.data_dir or rendezvous_dir("data")) / "rendezvous.db")


def settings_table() -> list[tuple[str, Any, str]]:
    return rows(Config)


def settings_markdown() -> str:
    return markdown(Config, ENV_PREFIX)


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
        section="rendezvous",
        environ=environ,
        overrides=overrides,
    )
    validate(config)
    return config


def validate(config: Config) -> None:
    if "*" in config.cors_origins:
        raise SettingsError("cors_origins: '*' is not allowed; list the exact origins")
    if not 0 <= config.port <= 65535:
        raise SettingsError("port: must be 0..65535")
    for name in (
        "token_rate_limit_per_hour",
        "join_rate_limit_per_hour",
        "report_rate_limit_per_hour",
        "admin_login_rate_limit_per_hour",
        "ws_max_message_bytes",
        "ws_message_burst",
        "held_messages_max",
        "held_bytes_max",
        "rate_limit_keys_max",
    ):
        if getattr(config, name) < 1:
            raise SettingsError(f"{name}: must be at least 1")
    if not 1 <= config.ipv6_prefix_length <= 128:
        raise SettingsError("ipv6_prefix_length: must be 1..128")
    if config.gc_thaw_minutes < 0:
        raise SettingsError("gc_thaw_minutes: must be 0 (off) or more")
    if config.ttl_minute_seconds <= 0:
        raise SettingsError("ttl_minute_seconds: must be more than 0")
    if config.log_level.lower() not in {"debug", "info", "warning", "error"}:
        raise SettingsError("log_level: one of debug, info, warning, error")
    validate_ice(config)


def validate_ice(config: Config) -> None:
    """The ICE settings: well-formed URLs, and TURN only with a secret (and vice versa)."""
    for url in config.stun_urls:
        problem = ice_url_problem(url, ("stun", "stuns"))
        if problem:
            raise SettingsError(f"stun_urls: {url!r}: {problem}")
    for url in config.turn_urls:
        problem = ice_url_problem(url, ("turn", "turns"))
        if problem:
            raise SettingsError(f"turn_urls: {url!r}: {problem}")
    if config.turn_urls and not config.turn_shared_secret:
        raise SettingsError("turn_urls: set turn_shared_secret too (the TURN server's secret)")
    if config.turn_shared_secret and not config.turn_urls:
        raise SettingsError("turn_shared_secret: set without turn_urls (no TURN server to use it)")
    if config.turn_credential_ttl_seconds < 1:
        raise SettingsError("turn_credential_ttl_seconds: must be at least 1")


ICE_URL = re.compile(
    r"(?P<scheme>[a-z]+):(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?"
    r"(?:\?transport=(?P<transport>udp|tcp))?"
)


def ice_url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """What is wrong with an ICE server URL (RFC 7064/7065), or None."""
    found = ICE_URL.fullmatch(url)
    if found is None:
        return "expected scheme:host[:port][?transport=udp|tcp]"
    if found["scheme"] not in schemes:
        return "the scheme must be " + " or ".join(f"`{s}:`" for s in schemes)
    if found["port"] is not None and not 1 <= int(found["port"]) <= 65535:
        return "the port must be 1..65535"
    if found["transport"] is not None and found["scheme"].startswith("stun"):
        return "a STUN URL has no transport"
    return None


__all__ = ["Config", "SettingsError", "load_config", "settings_markdown", "settings_table"]
