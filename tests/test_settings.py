"""Settings: one table in code, read from TOML, environment and flags; the README matches it."""

from __future__ import annotations

from pathlib import Path

import pytest

from rendezvous.settings import SettingsError, load_config, settings_markdown, settings_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_documents_every_setting_exactly() -> None:
    assert settings_markdown() in README.read_text(), (
        "README's settings table is out of date: paste `orbit-rendezvous settings` into it"
    )


def test_every_setting_has_help() -> None:
    for name, _default, help_text in settings_table():
        assert help_text.strip(), name


def test_priority_defaults_toml_env_flags(tmp_path: Path) -> None:
    toml = tmp_path / "rendezvous.toml"
    toml.write_text(
        '[rendezvous]\nport = 6000\ncors_origins = ["https://a.example"]\nlog_level = "debug"\n'
    )
    env = {"ORBIT_RENDEZVOUS_PORT": "7000", "ORBIT_RENDEZVOUS_SMTP_STARTTLS": "yes"}
    config = load_config(toml_path=str(toml), environ=env, overrides={"log_level": "warning"})
    assert config.port == 7000
    assert config.cors_origins == ["https://a.example"]
    assert config.smtp_starttls is True
    assert config.log_level == "warning"
    assert config.host == "127.0.0.1"  # safe default
    assert load_config(environ={}).token_rate_limit_per_hour == 10


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"ORBIT_RENDEZVOUS_PORT": "many"}, "'port'"),
        ({"ORBIT_RENDEZVOUS_PORT": "70000"}, "port"),
        ({"ORBIT_RENDEZVOUS_CORS_ORIGINS": "*"}, "cors_origins"),
        ({"ORBIT_RENDEZVOUS_SMTP_STARTTLS": "perhaps"}, "smtp_starttls"),
        ({"ORBIT_RENDEZVOUS_TOKEN_RATE_LIMIT_PER_HOUR": "0"}, "token_rate_limit_per_hour"),
        ({"ORBIT_RENDEZVOUS_IPV6_PREFIX_LENGTH": "0"}, "ipv6_prefix_length: must be 1..128"),
        ({"ORBIT_RENDEZVOUS_IPV6_PREFIX_LENGTH": "129"}, "ipv6_prefix_length"),
        ({"ORBIT_RENDEZVOUS_RATE_LIMIT_KEYS_MAX": "0"}, "rate_limit_keys_max"),
    ],
)
def test_bad_settings_say_which_and_why(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        load_config(environ=env)


def test_unknown_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    toml = tmp_path / "r.toml"
    toml.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        load_config(toml_path=str(toml), environ={})
