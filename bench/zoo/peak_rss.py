"""Run one command and report its own peak RSS: ``python bench/zoo/peak_rss.py REPORT TIMEOUT_S -- COMMAND...``.

A tiny separate process, so the measurement is per child and not inflated: Linux counts the RSS a process had when
it called exec, and a child forked (vfork) from the big harness process would start from the harness's RSS.
Here the child is forked from this small wrapper, which waits for exactly that one child and writes
``{"returncode", "peak_rss_kb", "timed_out"}`` (RUSAGE_CHILDREN.ru_maxrss, KiB on Linux) as JSON to REPORT.
Run by path: it imports nothing from the harness.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys


def main(argv: list[str]) -> int:
    report, timeout, command = argv[0], float(argv[1]), argv[3:] if argv[2] == "--" else argv[2:]
    timed_out = False
    try:
        returncode = subprocess.run(command, timeout=timeout, check=False).returncode
    except subprocess.TimeoutExpired:
        returncode, timed_out = -9, True
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(report, "w") as out:
        json.dump({"returncode": returncode, "peak_rss_kb": peak, "timed_out": timed_out}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
