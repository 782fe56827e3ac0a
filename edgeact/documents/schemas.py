"""The JSON Schema files under docs/schema/, generated from the document classes (their one source of truth); a test
fails when a file differs from what the classes say. After changing a class:

    .venv/bin/python -m edgeact.documents.schemas docs/schema
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from edgeact.documents.calibration_record import CalibrationRecordDocument
from edgeact.documents.profile_report import REPORT_SCHEMA, ProfileReport
from edgeact.documents.sensitivity_report import SENSITIVITY_SCHEMA, SensitivityReport
from edgeact.documents.typed_json import json_schema

SCHEMAS: dict[str, tuple[type, str]] = {  # file -> (class, title)
    "profile-report.schema.json": (ProfileReport, f"edgeact profile-device report, schema {REPORT_SCHEMA}"),
    "calibration-record.schema.json": (CalibrationRecordDocument, "edgeact calibration record"),
    "sensitivity-report.schema.json": (SensitivityReport, f"edgeact sensitivity report, schema {SENSITIVITY_SCHEMA}"),
}


def schema(file: str) -> dict[str, Any]:
    """The JSON Schema written as ``file``."""
    cls, title = SCHEMAS[file]
    return json_schema(cls, f"urn:edgeact:schema:{file.removesuffix('.schema.json')}", title)


def schema_text(file: str) -> str:
    return json.dumps(schema(file), indent=2) + "\n"


def write_schemas(folder: str | Path) -> list[Path]:
    """Every schema file into ``folder``."""
    written = []
    for file in SCHEMAS:
        path = Path(folder) / file
        path.write_text(schema_text(file))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas(sys.argv[1] if len(sys.argv) > 1 else "docs/schema"):
        print(path)
