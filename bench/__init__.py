"""Benchmarks of the loyalty engine: apart from the tests, they print figures and write JSON."""
