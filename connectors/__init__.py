"""Connectors: clients for the form servers (KoboToolbox, ODK Central)."""
