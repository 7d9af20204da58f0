"""Wall time and CPU time of one stretch of a benchmark, for the server and the load generator."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .procs import Server


@dataclass(frozen=True)
class Usage:
    seconds: float
    server_cpu_percent: float
    """Server CPU time over wall time; 100 is one core busy (the server is single-threaded)."""
    loadgen_cpu_percent: float
    """The same for this process, the load generator."""


class Meter:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.wall = time.perf_counter()
        self.server_cpu = server.cpu_seconds()
        self.own_cpu = time.process_time()

    def read(self) -> Usage:
        wall = max(time.perf_counter() - self.wall, 1e-9)
        server_cpu = self.server.cpu_seconds() - self.server_cpu
        own_cpu = time.process_time() - self.own_cpu
        return Usage(wall, 100.0 * server_cpu / wall, 100.0 * own_cpu / wall)
