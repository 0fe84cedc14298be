"""Logs, metrics and the per-request record: what an operator sees, and never a secret in it."""
