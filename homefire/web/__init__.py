"""The browser route: the same Textual chat app served to a web browser (textual-serve), privately."""

from .server import WebServer, check_bind, is_loopback

__all__ = ["WebServer", "check_bind", "is_loopback"]
