"""Tabular NAS benchmarks: search strategies answered by table lookup, in seconds."""
