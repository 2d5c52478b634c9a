"""The Textual TUI."""

from .app import HomefireApp, run_app

__all__ = ["HomefireApp", "run_app"]
