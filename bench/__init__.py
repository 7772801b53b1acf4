"""The benchmark: each server in its own process, driven by wrk (or a Python generator); see run.py."""
