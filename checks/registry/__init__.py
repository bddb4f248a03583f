"""registry.* checks: one module per check id (checks/registry/<name>.py), shared readers in _*.py."""
