"""The lab's registry content: images, cosign signatures, Trivy reports, a token service.

Entry points (run with PYTHONPATH=tests): `python3 -m lab.content populate <lab.json>`,
`python3 -m lab.content token-service <lab.json>`, `python3 -m lab.content scale <lab.json>
--repos N --tags M --concurrency C`. What is pushed, and which tag carries which seeded defect,
is documented in SPEC.md beside this file.
"""
