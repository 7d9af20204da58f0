"""Every use of zeroconf's undocumented API, behind small named functions.

The names, and why LAN discovery needs them:

- `Zeroconf.cache` (a `DNSCache`), its `async_entries_with_name` and
  `async_remove_records`, and `DNSPointer.alias`: zeroconf never reports a killed
  peer as gone, and a peer it still has in its cache is no news to a browser when
  it comes back. So a peer that stopped answering hellos is forgotten by hand
  (`forget_service`), and its restart is listed again;
- `zeroconf._cache.DNSCache`, `zeroconf._dns.DNSPointer` and `DNSRecord`: the
  package re-exports them at run time but not to a type checker.

`check()` verifies each of them against the installed zeroconf (see `REQUIRED`).
Call `forget_service` on the event loop zeroconf runs on (the `async_` methods).
"""

from __future__ import annotations

import inspect
from typing import Any

from zeroconf import Zeroconf
from zeroconf._cache import DNSCache  # zeroconf re-exports these three, but not for mypy
from zeroconf._dns import DNSPointer, DNSRecord

from .requirements import Requirement, failures


def forget_service(zc: Zeroconf, service_type: str, name: str) -> int:
    """Drop the records of the service instance `name` (SRV, TXT, ...) and the PTR
    of `service_type` that points at it from `zc`'s cache. Returns how many."""
    cache = zc.cache
    records: list[DNSRecord] = list(cache.async_entries_with_name(name))
    records += [
        r
        for r in cache.async_entries_with_name(service_type)
        if isinstance(r, DNSPointer) and r.alias.lower() == name.lower()
    ]
    cache.async_remove_records(records)
    return len(records)


# --- what the library must still have -----------------------------------------------------


def _method(cls: type, name: str, *parameters: str) -> str | None:
    method: Any = getattr(cls, name, None)
    if not callable(method):
        return f"{cls.__name__} has no method {name}"
    found = [p for p in inspect.signature(method).parameters if p != "self"]
    ok = found == list(parameters)
    return None if ok else f"{cls.__name__}.{name} takes {found}, not {list(parameters)}"


def _probe_cache() -> str | None:
    if "cache" not in Zeroconf.__init__.__code__.co_names:
        return "Zeroconf.__init__ no longer sets cache"
    return _method(DNSCache, "async_entries_with_name", "name") or _method(
        DNSCache, "async_remove_records", "entries"
    )


def _probe_pointer() -> str | None:
    pointer = DNSPointer("_t._tcp.local.", 12, 1, 120, "x._t._tcp.local.")
    return None if pointer.alias == "x._t._tcp.local." else "DNSPointer.alias is not its target"


REQUIRED: tuple[Requirement, ...] = (
    Requirement("zeroconf Zeroconf.cache, DNSCache.async_*", _probe_cache),
    Requirement("zeroconf DNSPointer.alias", _probe_pointer),
)


def check() -> list[str]:
    """One line per private name that is missing or changed shape; empty when all hold."""
    return failures(REQUIRED)


__all__ = ["REQUIRED", "check", "forget_service"]
