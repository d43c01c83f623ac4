"""Evaluations and benchmarks: measured and printed, never asserted in CI."""
