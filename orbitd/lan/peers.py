"""Verified peers: the LAN names whose key the user checked once ("verified before").

`verified-peers.json` in the data directory (mode 0600) maps a display name to
the fingerprint the user verified and when. A nearby peer that announces a
known name with another key is flagged. Names are compared after Unicode
NFKC normalisation and case folding, so "Alice" and "ALICE" are one name.
The file is rewritten whole (temporary file, then rename) on every change.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from orbitcore.files import write_atomic

log = logging.getLogger("orbitd.lan.peers")

PEERS_FILE = "verified-peers.json"
FINGERPRINT = re.compile(r"[0-9a-f]{64}")
Status = Literal["verified", "unknown", "mismatch"]


def name_key(name: str) -> str:
    """The form two names are compared in: NFKC, case-folded, outer spaces trimmed."""
    return unicodedata.normalize("NFKC", name).casefold().strip()


@dataclass(frozen=True)
class VerifiedPeer:
    name: str
    fingerprint: str
    verified_at: int  # unix seconds

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "fingerprint": self.fingerprint, "verified_at": self.verified_at}


class VerifiedPeers:
    """The store: loaded once, written on every change."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / PEERS_FILE
        self._peers: dict[str, VerifiedPeer] = {}
        self._load()

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read verified peers", extra={"fields": {"error": str(exc)}})
            return
        try:
            data = json.loads(raw)
            for entry in data["peers"]:
                peer = VerifiedPeer(
                    str(entry["name"]), str(entry["fingerprint"]), int(entry["verified_at"])
                )
                if FINGERPRINT.fullmatch(peer.fingerprint) and name_key(peer.name):
                    self._peers[name_key(peer.name)] = peer
        except (ValueError, KeyError, TypeError) as exc:
            # Kept aside, not overwritten: the user may want to look at it.
            aside = self.path.with_name(f"{PEERS_FILE}.bad-{int(time.time())}")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            log.warning(
                "verified peers file unreadable: set aside, starting empty",
                extra={"fields": {"error": str(exc), "moved_to": str(aside)}},
            )
            self._peers.clear()

    def _save(self) -> None:
        data = {"version": 1, "peers": [p.public() for p in self._peers.values()]}
        write_atomic(self.path, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode())

    def remember(self, name: str, fingerprint: str) -> VerifiedPeer:
        """Record that `name` is the key `fingerprint` (replacing what was known)."""
        if not FINGERPRINT.fullmatch(fingerprint):
            raise ValueError("a fingerprint is 64 lowercase hex digits")
        if not name_key(name):
            raise ValueError("a name is needed")
        peer = VerifiedPeer(name, fingerprint, int(time.time()))
        self._peers[name_key(name)] = peer
        self._save()
        return peer

    def forget(self, name: str) -> bool:
        """Forget `name`; False if it was not known."""
        if self._peers.pop(name_key(name), None) is None:
            return False
        self._save()
        return True

    def get(self, name: str) -> VerifiedPeer | None:
        return self._peers.get(name_key(name))

    def status(self, name: str, fingerprint: str) -> Status:
        """`verified` (this name, this key), `mismatch` (this name, other key) or `unknown`."""
        known = self._peers.get(name_key(name))
        if known is None:
            return "unknown"
        return "verified" if secrets.compare_digest(known.fingerprint, fingerprint) else "mismatch"

    def all(self) -> list[VerifiedPeer]:
        return sorted(self._peers.values(), key=lambda p: name_key(p.name))
