"""homefire: a private assistant that runs entirely on your own machine."""

__version__ = "0.1.0"
