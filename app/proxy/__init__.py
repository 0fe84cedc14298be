"""The `/proxy` and `/sign` pipeline: authorise, strip, sign, send, relay."""
