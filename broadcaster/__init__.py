"""broadcaster: write one crisis update, have it approved, fan it out to every channel."""

__version__ = "0.1.0"

__all__ = ["__version__"]
