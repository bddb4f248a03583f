"""regaudit: a compliance auditing scanner for self-hosted Docker registries."""

__version__ = "0.1.0"
