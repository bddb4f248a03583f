"""Remediation: generators, plans and safe installation of the guide's configs."""
