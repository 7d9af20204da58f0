"""Benchmarks. `python -m bench` runs every suite (rendezvous, then orbitd), each against a
baseline measured in the same run; `python -m bench SUITE` runs one."""
