"""ddcodec's version (pyproject.toml's `version` says the same), in a module any stage may import."""

__version__ = "0.12.0.dev8"
