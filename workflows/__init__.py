"""Deterministic code only: the incident workflow and the pure policy logic it relies on."""
