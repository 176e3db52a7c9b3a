"""Prefect flows and the `sammachip` command line: orchestration only, no business logic."""
