"""ChatDesk: a fast, private desktop AI chat app."""

__version__ = "0.1.0"
