"""Built-in checks (imported as auditor.checks). Every module-level Check here is discovered."""
