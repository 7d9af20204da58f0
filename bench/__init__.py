"""Benchmarks. `python -m bench` measures the rendezvous against a bare aiohttp baseline."""
