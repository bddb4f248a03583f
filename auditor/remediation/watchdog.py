"""The firewall watchdog: restores the saved rulesets unless `regaudit remediate --confirm` runs in time.

Started detached by apply (its own session, in the registry's network namespace) as
`python -m auditor.remediation.watchdog JOURNAL`; it polls the journal once a second and exits
when the change is confirmed or rolled back, or after reverting it at the deadline.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .journal import Journal
from .netfilter import restore


def revert_if_due(journal: Journal, now: float) -> bool:
    """Revert the firewall when its deadline passed unconfirmed; True when the watchdog is finished."""
    fw = journal.firewall
    if not fw or fw.get("confirmed") or fw.get("reverted") or journal.status in ("rolled_back",):
        return True
    if now < float(fw.get("deadline", 0)):
        return False
    for step in journal.steps:
        if step.get("kind") == "firewall":
            saved = (Path(journal.backup_dir) / step["saved"]).read_text()
            restore(step["tool"], None, saved)
    fw["reverted"] = True
    journal.messages.append("firewall change reverted by the watchdog: not confirmed in time")
    journal.save()
    return True


def main(argv: list[str]) -> int:
    path = Path(argv[0])
    while True:
        journal = Journal.load(path)
        if journal is None or revert_if_due(journal, time.time()):
            return 0
        time.sleep(1.0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
