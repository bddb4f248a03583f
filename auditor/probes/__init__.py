"""Evidence providers. Every module here is walked; each module-level Probe is registered."""
