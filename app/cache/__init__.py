"""What the hot path keeps in memory, and how every replica learns that it changed."""
