"""Connectors: everything that talks to real servers — the KoboToolbox and ODK Central clients
with their sync passes and cursors (`kobo/`, `odk/`), what every source offers a run
(`sources.py`) and how the configured servers' forms are found (`discovery.py`), retries, the
webhook receiver and its landing spool, and loopback serving."""
