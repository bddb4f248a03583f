"""Generators: one module per `meta.generator` name; each turns failing results into plan items."""
