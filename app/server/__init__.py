"""Serving HTTP/1.1: signvault's own protocol, run by uvicorn."""
