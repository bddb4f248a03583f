"""Fleets: many registry hosts gathered through Ansible and judged centrally.

- `gather_main`: the inside gathering that runs on a target host (the gather-only zipapp's entry).
- `build_zipapp`: builds that zipapp (`python -m auditor.fleet.build_zipapp`).
- `inventory`, `judge`, `report`: what `regaudit fleet` reads, judges and writes on the control host.
"""
