"""What native runtime code prints to the process's stderr (LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate
for CPU."): captured while it runs, dropped when the call succeeds, kept for the error when it fails. With
``EDGEACT_VERBOSE`` set (``edgeact --verbose``) it goes to the terminal as it comes."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

VERBOSE_ENV = "EDGEACT_VERBOSE"


class Captured:
    """The text native code wrote while captured (empty when nothing was captured)."""

    text: str = ""


@contextmanager
def native_stderr() -> Iterator[Captured]:
    """Send file descriptor 2 to a temporary file for the duration; ``Captured.text`` holds what arrived."""
    captured = Captured()
    if os.environ.get(VERBOSE_ENV):
        yield captured
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode(errors="replace").strip()
