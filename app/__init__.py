"""signvault: holds exchange API credentials and signs requests for trading bots."""

__version__ = "0.1.0"
