"""Kestrel tools: the ``kestrel`` command line, metrics, demo and benchmarks."""
