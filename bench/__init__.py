"""Benchmarks: each module measures one thing and writes build/bench/<name>.json."""
