"""Benchmarks users can rerun on their own data (`sslapp bench ...`)."""
