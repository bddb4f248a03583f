"""The pure judgement package: everything a check may import besides the check API.

Nothing here does I/O (no files, sockets, subprocesses, clocks read from the host): values come in
as arguments (recorded evidence, profile parameters) and verdicts go out. Probes and remediation
import it too, so a rule is written once. tests/unit/test_architecture.py enforces the rule (docs/architecture.md).
"""
