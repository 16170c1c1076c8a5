"""Benchmark sections for `kestrel bench`: each returns markdown lines measured in one run."""
