"""Whether this daemon is visible on the LAN: a pure state machine, given `now`.

Off unless the user says otherwise. Two ways to be visible (AirDrop's "Everyone for
10 minutes" and a remembered list):

- `timed`: visible until `until` (Unix seconds), then off by itself;
- `network`: always while on one of the remembered `networks` (see `networks`).

`mode(now, here)` says which applies; the remembered networks win over the timer.
Choosing `off` or `timed` while on a remembered network forgets that network (the
user asked for less there); choosing `network` remembers the networks we are on.
The state is kept in the preferences file (`to_json`): a timer and network ids,
nothing of a chat.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from .networks import Network

Mode = Literal["off", "timed", "network"]
MODES: tuple[Mode, ...] = ("off", "timed", "network")
NETWORKS_MAX = 32  # remembered at once; the oldest goes first
NETWORK_ID = re.compile(r"[0-9a-f]{32}")
LABEL_MAX = 64


class VisibilityError(ValueError):
    """The choice cannot be made here (no network to remember)."""


@dataclass(frozen=True)
class Visibility:
    until: float | None = None
    networks: tuple[Network, ...] = ()

    def mode(self, now: float, here: Collection[str]) -> Mode:
        if any(n.id in here for n in self.networks):
            return "network"
        if self.until is not None and now < self.until:
            return "timed"
        return "off"

    def visible(self, now: float, here: Collection[str]) -> bool:
        return self.mode(now, here) != "off"

    def remaining(self, now: float) -> int | None:
        """Whole seconds the timer has left (None: no timer running)."""
        if self.until is None or now >= self.until:
            return None
        return max(1, int(self.until - now + 0.999))

    def next_change(self, now: float) -> float | None:
        """When `mode` changes by the clock alone (the timer's end), if it will."""
        return self.until if self.until is not None and now < self.until else None

    def choose(self, mode: str, now: float, here: list[Network], seconds: float) -> Visibility:
        """The user's choice, made while on the networks `here`."""
        if mode not in MODES:
            raise ValueError(f"mode: one of {', '.join(MODES)}")
        ids = {n.id for n in here}
        others = tuple(n for n in self.networks if n.id not in ids)
        if mode == "off":
            return Visibility(None, others)
        if mode == "timed":
            return Visibility(now + seconds, others)
        if not here:
            raise VisibilityError("This device is on no LAN that can be told apart.")
        return Visibility(None, (*others, *here)[-NETWORKS_MAX:])

    def forget(self, network_id: str) -> Visibility | None:
        """Without that remembered network; None if it was not remembered."""
        kept = tuple(n for n in self.networks if n.id != network_id)
        return None if len(kept) == len(self.networks) else Visibility(self.until, kept)

    def public(self, now: float, here: list[Network]) -> dict[str, Any]:
        ids = {n.id for n in here}
        mode = self.mode(now, ids)
        return {
            "mode": mode,
            "visible": mode != "off",
            "remaining_seconds": self.remaining(now) if mode == "timed" else None,
            "here": [{"id": n.id, "label": n.label} for n in here],
            "networks": [
                {"id": n.id, "label": n.label, "here": n.id in ids} for n in self.networks
            ],
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "until": self.until,
            "networks": [{"id": n.id, "label": n.label} for n in self.networks],
        }

    @classmethod
    def from_json(cls, raw: object) -> Visibility:
        """Leniently: what is malformed is dropped (off is the safe reading)."""
        if not isinstance(raw, dict):
            return cls()
        until = raw.get("until")
        if isinstance(until, bool) or not isinstance(until, int | float):
            until = None
        networks: list[Network] = []
        listed = raw.get("networks")
        for entry in listed if isinstance(listed, list) else []:
            if not isinstance(entry, dict):
                continue
            network_id, label = entry.get("id"), entry.get("label")
            if isinstance(network_id, str) and NETWORK_ID.fullmatch(network_id):
                text = label[:LABEL_MAX] if isinstance(label, str) else ""
                networks.append(Network(network_id, text))
        return cls(float(until) if until is not None else None, tuple(networks[-NETWORKS_MAX:]))
