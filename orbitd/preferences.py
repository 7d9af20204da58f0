"""The user's UI preferences (language, terms accepted, hide my address, LAN visibility),
kept in the data dir.

Nothing of a chat goes here: only what makes the UI the same after a restart.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from orbitcore.files import write_atomic
from orbitcore.i18n import LANGUAGES

FILE_NAME = "preferences.json"


class PreferenceError(ValueError):
    pass


@dataclass
class Preferences:
    language: str | None = None
    terms_accepted: bool = False
    # "Hide my address from the other person" (relay only) for the next sessions;
    # None: the `ice_relay_only` setting decides.
    hide_address: bool | None = None
    # LAN visibility (`orbitd.lan.visibility.Visibility.to_json`): its own API, not
    # part of `public()` or `update()`.
    lan_visibility: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        shown = asdict(self)
        del shown["lan_visibility"]
        return shown

    def relay_only(self, setting: bool) -> bool:
        """Whether the next session connects only through a relay."""
        return setting if self.hide_address is None else self.hide_address


class PreferencesStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME
        self.current = self._load()

    def _load(self) -> Preferences:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return Preferences()
        language = raw.get("language") if isinstance(raw, dict) else None
        accepted = raw.get("terms_accepted") if isinstance(raw, dict) else False
        hide = raw.get("hide_address") if isinstance(raw, dict) else None
        lan = raw.get("lan_visibility") if isinstance(raw, dict) else None
        return Preferences(
            language=language if language in LANGUAGES else None,
            terms_accepted=accepted is True,
            hide_address=hide if isinstance(hide, bool) else None,
            lan_visibility=lan if isinstance(lan, dict) else {},
        )

    def update(self, body: Any) -> Preferences:
        if not isinstance(body, dict):
            raise PreferenceError("The request body must be a JSON object.")
        unknown = set(body) - {"language", "terms_accepted", "hide_address"}
        if unknown:
            raise PreferenceError(f"Unknown preference: {sorted(unknown)[0]}.")
        language = body.get("language", self.current.language)
        if language is not None and language not in LANGUAGES:
            raise PreferenceError(f"language must be one of {', '.join(LANGUAGES)}.")
        accepted = body.get("terms_accepted", self.current.terms_accepted)
        if not isinstance(accepted, bool):
            raise PreferenceError("terms_accepted must be true or false.")
        hide = body.get("hide_address", self.current.hide_address)
        if hide is not None and not isinstance(hide, bool):
            raise PreferenceError("hide_address must be true, false or null.")
        self.current = replace(
            self.current, language=language, terms_accepted=accepted, hide_address=hide
        )
        self._save()
        return self.current

    def set_lan_visibility(self, visibility: dict[str, Any]) -> None:
        self.current = replace(self.current, lan_visibility=visibility)
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.path, json.dumps(asdict(self.current)).encode())
