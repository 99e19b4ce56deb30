"""Benchmarks (not tests). Run all with ``make bench`` (``python -m benchmarks``); each writes its section of
``docs/benchmarks.md`` with the machine and the date."""
