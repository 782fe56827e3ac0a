"""Copy the tables `make bench` printed into README.md, so the README shows exactly this commit's numbers.

    make bench 2>&1 | tee out/bench.log && .venv/bin/python -m bench.sync_readme out/bench.log

Every table in the README whose header line appears in the log is replaced by the log's rows (the onnxruntime
comparison drops its timing column, shown in bench/results.md instead).
"""

from __future__ import annotations

import sys
from pathlib import Path

from edgeact.io import atomic_write

DROP_LAST_COLUMN = ("| model                                   | edgeact qdq",)


def tables(log: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    rows: list[str] = []
    for line in log + [""]:
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            found[rows[0]] = rows
            rows = []
    return found


def sync(readme: Path, log_path: Path) -> int:
    noise = ("WARNING", "INFO", "Please", "warn")
    log = [line for line in log_path.read_text().splitlines() if not any(n in line for n in noise)]
    found = tables(log)
    lines = readme.read_text().splitlines()
    replaced = 0
    index = 0
    while index < len(lines):
        header = lines[index]
        match = next((h for h in found if h.startswith(header.split(" |")[0] + " |") and _same_columns(h, header)),
                     None) if header.startswith("|") else None
        if match is None:
            index += 1
            continue
        end = index
        while end < len(lines) and lines[end].startswith("|"):
            end += 1
        rows = found[match]
        if header.startswith(DROP_LAST_COLUMN):
            rows = ["|".join(row.split("|")[:-2]) + "|" for row in rows]
        lines[index:end] = rows
        index += len(rows)
        replaced += 1
    atomic_write(readme, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
    return replaced


def _same_columns(log_header: str, readme_header: str) -> bool:
    log_cells = [c.strip() for c in log_header.strip("|").split("|")]
    readme_cells = [c.strip() for c in readme_header.strip("|").split("|")]
    return readme_cells == log_cells[: len(readme_cells)]


if __name__ == "__main__":
    count = sync(Path("README.md"), Path(sys.argv[1]))
    print(f"README.md: {count} tables updated from {sys.argv[1]}")
