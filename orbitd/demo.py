"""`python -m orbitd.demo`: the whole product on one machine, for `make run`.

Starts a rendezvous and two daemons (profiles alice and bob) on 127.0.0.1 with
the loopback ICE candidate, prints the two login links, and stops them all on
Ctrl-C. Open each link in its own browser window (or a private one): one is
Alice, the other Bob. When Alice makes an invite, a link for Bob is printed that
opens his join page with her invite filled in (orbitd/demo_invites.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path


async def _start(
    name: str, args: list[str], log_path: Path
) -> tuple[asyncio.subprocess.Process, str]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=log
        )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
    if not line:
        await proc.wait()
        raise RuntimeError(f"{name} did not start (exit {proc.returncode}); see {log_path}")
    return proc, line


async def run(
    run_dir: Path, rendezvous_port: int, daemon_ports: dict[str, int], lan: bool = True
) -> int:
    procs: list[asyncio.subprocess.Process] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        rv, line = await _start(
            "rendezvous",
            [
                "-m",
                "rendezvous",
                "--port",
                str(rendezvous_port),
                "--data-dir",
                str(run_dir / "rendezvous"),
            ],
            run_dir / "rendezvous.log",
        )
        procs.append(rv)
        rendezvous_url = line.split()[-1]
        links = {}
        for profile, port in daemon_ports.items():
            proc, line = await _start(
                profile,
                [
                    "-m",
                    "orbitd",
                    "--profile",
                    profile,
                    "--port",
                    str(port),
                    "--rendezvous",
                    rendezvous_url,
                    "--data-dir",
                    str(run_dir / profile),
                    "--ice-loopback",
                    *(["--lan-port", "0"] if lan else ["--no-lan-enabled"]),
                ],
                run_dir / f"{profile}.log",
            )
            procs.append(proc)
            links[profile] = line.split()[-1]
    except (RuntimeError, TimeoutError) as exc:
        print(f"make run: {exc}", file=sys.stderr)
        await _stop(procs)
        return 1
    print(f"\nRendezvous: {rendezvous_url}")
    for profile, link in links.items():
        # Each daemon at its own *.localhost name: browsers resolve it to loopback and keep
        # its login cookie to itself (a cookie for 127.0.0.1 goes to every local port).
        print(f"{profile:>6}: {link.replace('127.0.0.1', f'{profile}.orbitd.localhost', 1)}")
    print(
        "\nOpen each link in its own browser window (a browser that does not resolve"
        " *.localhost names: use 127.0.0.1 in their place)."
        "\nWhen alice makes an invite, bob's link to join it is printed here."
        f"\nLogs: {run_dir}/*.log. Ctrl-C stops everything."
    )
    watcher = None
    if {"alice", "bob"} <= links.keys():
        from .demo_invites import print_join_links

        watcher = asyncio.ensure_future(
            print_join_links(("alice", run_dir / "alice"), ("bob", run_dir / "bob"))
        )
    waiters = [asyncio.ensure_future(p.wait()) for p in procs]
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait([stopper, *waiters], return_when=asyncio.FIRST_COMPLETED)
    code = 0 if stopper in done else 1
    if code:
        print("make run: a process stopped on its own; stopping the rest", file=sys.stderr)
    stopper.cancel()
    if watcher is not None:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    await _stop(procs)
    return code


async def _stop(procs: list[asyncio.subprocess.Process]) -> None:
    for proc in reversed(procs):
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orbitd.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--run-dir", default="run", help="where data and logs go (default: run)")
    parser.add_argument("--rendezvous-port", type=int, default=50001)
    parser.add_argument("--alice-port", type=int, default=7170)
    parser.add_argument("--bob-port", type=int, default=7172)
    parser.add_argument(
        "--no-lan",
        action="store_true",
        help="the daemons neither announce nor look for nearby peers",
    )
    args = parser.parse_args(argv)
    ports = {"alice": args.alice_port, "bob": args.bob_port}
    code = 1
    with contextlib.suppress(KeyboardInterrupt):
        code = asyncio.run(
            run(Path(args.run_dir).resolve(), args.rendezvous_port, ports, lan=not args.no_lan)
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
