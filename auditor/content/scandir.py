"""Reading a Trivy scan directory (I/O): every `*.json` report, compacted, plus its ignore files.

The judgement on what is read (naming, ages, ignore rules) is pure and lives in auditor.judge.scans.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from auditor import bounded
from auditor.judge.scans import MAX_REPORT, compact_report, parse_trivyignore, parse_trivyignore_yaml


def read_scan_dir(path: str | None) -> dict[str, Any]:
    """Every `*.json` report in the scan directory, compacted, plus its ignore files."""
    out: dict[str, Any] = {"scan_dir": path, "reports": {}, "ignore": [], "ignore_sources": [], "errors": []}
    if not path:
        return out
    base = Path(path)
    for name in (".trivyignore", ".trivyignore.yaml", ".trivyignore.yml"):
        file = base / name
        if not file.is_file():
            continue
        try:
            text = bounded.read_text(file, what="ignore file", max_bytes=MAX_REPORT)
            out["ignore"] += parse_trivyignore(text) if name == ".trivyignore" else parse_trivyignore_yaml(text)
            out["ignore_sources"].append(str(file))
        except (OSError, ValueError, yaml.YAMLError) as exc:
            out["errors"].append(f"{file}: {exc}")
    with os.scandir(base) as entries:
        names = sorted(e.name for e in entries if e.name.endswith(".json") and e.is_file())
    for name in names:
        file = base / name
        try:
            st = file.stat()
            if st.st_size > MAX_REPORT:
                out["reports"][name] = {"parse_error": f"larger than {MAX_REPORT} bytes"}
                continue
            doc = bounded.load_json_file(file, what="scan report", max_bytes=MAX_REPORT)
        except bounded.InputError as exc:
            out["reports"][name] = {"parse_error": f"unreadable: {exc.reason}"}
            continue
        except OSError as exc:
            out["reports"][name] = {"parse_error": f"unreadable: {exc.strerror or exc}"}
            continue
        out["reports"][name] = compact_report(doc, st.st_mtime)
    return out
