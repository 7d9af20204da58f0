"""The ui suite's figures: each page's weight, the session page's budget, the table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .report import num, ratio, render
from .ui_network import Load, Socket, Transfer

KB = 1000  # bytes: kB as DevTools counts them
BUDGET_KB = 100.0
INVITE_BUDGET_KB = 30.0  # the rendezvous's invite page, for a newcomer on any connection
SEED_SESSION_KB = 280.0
"""The seed's Next.js session page, gzipped."""
LARGEST = 3


@dataclass(frozen=True)
class Item:
    method: str
    path: str
    kind: str
    status: int
    wire_bytes: int
    body_bytes: int | None
    gzip_bytes: int | None
    content_encoding: str
    after_load: bool

    @classmethod
    def of(cls, transfer: Transfer) -> Item:
        return cls(
            transfer.method,
            transfer.path,
            transfer.kind,
            transfer.status,
            transfer.wire_bytes,
            transfer.body_bytes,
            transfer.gzip_bytes,
            transfer.content_encoding,
            transfer.after_load,
        )


@dataclass(frozen=True)
class PageWeight:
    """One page as the browser loaded it, cache off. `items` is its weight: everything
    but the WebSocket and the API calls made after the load event (`api_after_load`)."""

    name: str
    path: str
    what: str
    items: list[Item]
    api_after_load: list[Item]
    sockets: list[Socket]
    compressed: int
    from_cache: int
    failed: list[str]

    @classmethod
    def of(cls, name: str, what: str, load: Load) -> PageWeight:
        items = [t for t in load.transfers if not t.is_api_after_load]
        api = [t for t in load.transfers if t.is_api_after_load]
        return cls(
            name=name,
            path=load.path,
            what=what,
            items=[Item.of(t) for t in items],
            api_after_load=[Item.of(t) for t in api],
            sockets=list(load.sockets),
            compressed=sum(1 for t in items if t.content_encoding),
            from_cache=sum(1 for t in load.transfers if t.from_cache),
            failed=[f"{t.method} {t.path}: {t.failed}" for t in load.transfers if t.failed],
        )

    @property
    def requests(self) -> int:
        return len(self.items)

    @property
    def kb(self) -> float:
        return sum(i.wire_bytes for i in self.items) / KB

    @property
    def gzip_kb(self) -> float | None:
        sizes = [i.gzip_bytes for i in self.items]
        if any(s is None for s in sizes):
            return None
        return sum(s for s in sizes if s is not None) / KB

    @property
    def header_kb(self) -> float | None:
        """Of `kb`, the response headers (when every body was still there to measure)."""
        if any(i.body_bytes is None for i in self.items):
            return None
        return sum(max(0, i.wire_bytes - (i.body_bytes or 0)) for i in self.items) / KB

    def repeated(self) -> list[str]:
        """Paths this page asked for more than once."""
        seen = [f"{i.method} {i.path}" for i in self.items]
        return sorted({path for path in seen if seen.count(path) > 1})

    def largest(self, n: int = LARGEST) -> list[Item]:
        return sorted(self.items, key=lambda i: i.wire_bytes, reverse=True)[:n]

    def summary(self) -> dict[str, Any]:
        """The figures for the JSON, beside the items themselves."""
        return {
            "requests": self.requests,
            "kb_transferred": round(self.kb, 2),
            "kb_if_gzipped": None if self.gzip_kb is None else round(self.gzip_kb, 2),
            "kb_of_headers": None if self.header_kb is None else round(self.header_kb, 2),
            "responses_compressed": self.compressed,
            "largest": [f"{i.path} {i.wire_bytes / KB:.1f} kB" for i in self.largest()],
        }


def short(path: str) -> str:
    return path.removeprefix("/static/")


def api_line(item: Item) -> str:
    return f"{item.method} {item.path} {item.status} {item.wire_bytes / KB:.1f} kB"


def socket_line(socket: Socket) -> str:
    return (
        f"{socket.path}: {socket.frames_received} frames in "
        f"({socket.payload_received / KB:.1f} kB payload, ~{socket.wire_received / KB:.1f} kB "
        f"on the wire), {socket.frames_sent} out ({socket.wire_sent / KB:.1f} kB)"
    )


def table(pages: list[PageWeight]) -> str:
    lines: list[tuple[str, ...]] = [("page", "requests", "kB", "of it headers", "kB gzipped*")]
    for page in pages:
        gz, headers = page.gzip_kb, page.header_kb
        lines.append(
            (
                f"{page.name} ({page.what})",
                str(page.requests),
                num(page.kb, 1),
                "n/a" if headers is None else num(headers, 1),
                "n/a" if gz is None else num(gz, 1),
            )
        )
    rows = render(lines).splitlines()
    width = max(len(row) for row in rows)
    largest = ["largest items (kB)", ""] + [
        ", ".join(f"{short(i.path)} {i.wire_bytes / KB:.1f}" for i in page.largest())
        for page in pages
    ]
    out = [
        f"{row.ljust(width)}  {extra}".rstrip() for row, extra in zip(rows, largest, strict=True)
    ]
    out[1] = "-" * max(len(line) for line in out)
    return "\n".join(out)


def after_load_lines(pages: list[PageWeight]) -> list[str]:
    """The traffic left out of the weights: API calls after load, WebSocket frames."""
    out = []
    for page in pages:
        if page.api_after_load:
            listed = "; ".join(api_line(i) for i in page.api_after_load)
            out.append(f"{page.name}: {len(page.api_after_load)} API calls after load: {listed}")
        out.extend(f"{page.name}: websocket {socket_line(s)}" for s in page.sockets)
    return out


def session_verdict(sessions: list[PageWeight]) -> dict[str, Any]:
    """The heaviest session page against the budget, and against the seed's."""
    goal = f"session page <= {BUDGET_KB:g} kB transferred"
    if not sessions:
        return {"goal": goal, "budget_kb": BUDGET_KB, "met": None, "why": "not measured"}
    heaviest = max(sessions, key=lambda p: p.kb)
    seed = ratio(heaviest.kb, SEED_SESSION_KB)
    each = ", ".join(f"{p.name} {p.kb:.1f} kB" for p in sessions)
    why = (
        f"{each}; the heaviest is {num(seed, 2)}x the seed's Next.js session page "
        f"(~{SEED_SESSION_KB:g} kB gzipped)"
    )
    return {
        "goal": goal,
        "budget_kb": BUDGET_KB,
        "kb": round(heaviest.kb, 2),
        "seed_kb": SEED_SESSION_KB,
        "ratio_to_seed": seed,
        "met": heaviest.kb <= BUDGET_KB,
        "why": why,
    }


def invite_page_verdict(pages: list[PageWeight]) -> dict[str, Any]:
    """The rendezvous's invite page (issue #12) against its budget."""
    goal = f"invite page <= {INVITE_BUDGET_KB:g} kB transferred"
    if not pages:
        return {"goal": goal, "budget_kb": INVITE_BUDGET_KB, "met": None, "why": "not measured"}
    page = pages[0]
    return {
        "goal": goal,
        "budget_kb": INVITE_BUDGET_KB,
        "kb": round(page.kb, 2),
        "met": page.kb <= INVITE_BUDGET_KB,
        "why": f"{len(page.items)} requests, {page.kb:.1f} kB",
    }


def notes(pages: list[PageWeight], accept_encoding: set[str]) -> list[str]:
    items = [i for p in pages for i in p.items]
    compressed = sum(p.compressed for p in pages)
    asked = " | ".join(sorted(accept_encoding)) or "nothing"
    out = [
        f"compression: {compressed} of {len(items)} responses had a Content-Encoding, "
        f"though Chromium sent Accept-Encoding: {asked}; "
        "* kB gzipped = the headers as received + the body gzipped at level 6 (an estimate)",
        "kB = 1000 bytes received: response headers and body as on the wire "
        "(CDP Network.loadingFinished encodedDataLength), with the cache disabled",
    ]
    repeated: dict[str, list[str]] = {}
    for page in pages:
        for path in page.repeated():
            kinds = sorted({i.kind for i in page.items if f"{i.method} {i.path}" == path})
            repeated.setdefault(f"{path} ({', '.join(kinds)})", []).append(page.name)
    out.extend(
        f"fetched twice or more on one page (the cache being off): {path} on {', '.join(names)}"
        for path, names in repeated.items()
    )
    cached = sum(p.from_cache for p in pages)
    if cached:
        out.append(f"{cached} responses came from a cache despite it being disabled")
    out.extend(f"failed: {page.name}: {f}" for page in pages for f in page.failed)
    return out
