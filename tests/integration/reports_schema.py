"""Validation of JSON reports against the published schema (reports/report.schema.json)."""

from __future__ import annotations

import jsonschema
from auditor.reports.json_report import report_schema


def validate_report(report: dict) -> None:
    jsonschema.Draft202012Validator(report_schema(), format_checker=jsonschema.FormatChecker()).validate(report)
