"""Schemas: form registry, clean tables, validation rules and reference data."""
