"""Idempotency-Key: one exchange request per key, the first answer replayed to every retry."""
