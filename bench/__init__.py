"""Benchmarks: each runs both sides alternating in one run and prints medians and ratios; none is a test."""
