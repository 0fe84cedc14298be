"""Rate limits and exchange back-off, so the shared egress IP never gets banned."""
