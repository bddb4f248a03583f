"""Report writers (imported as auditor.reports). Every module-level ReportWriter is discovered."""
