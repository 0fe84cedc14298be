"""The fixed egress: how exchange traffic leaves, and whether exchanges see the IP ops whitelisted."""
