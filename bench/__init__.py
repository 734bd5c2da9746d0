"""Benchmarks that compare our implementation with baselines: `python -m bench --list`."""
