"""JSON embedded in an HTML page, readable back with ``JSON.parse(element.textContent)``."""

from __future__ import annotations

import json
from typing import Any


def script_json(data: Any) -> str:
    """``data`` as JSON for a ``<script type="application/json">`` element: no HTML escaping (the element's text is
    not decoded, so ``&quot;`` would break the JSON), only ``<`` written as ``\\u003c`` so that no ``</script>`` or
    ``<!--`` inside a string can end or disturb the element. Non-finite floats become null (JSON has none)."""
    text = json.dumps(_finite(data), sort_keys=True, default=float, allow_nan=False)
    return text.replace("<", "\\u003c")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
