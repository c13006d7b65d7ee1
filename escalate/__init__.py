"""Shared plumbing of escalate: settings, logging and the Temporal connection."""
