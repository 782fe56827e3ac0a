"""onnxruntime sessions (CPU, fixed thread count so results do not depend on the machine)."""

from __future__ import annotations

import numpy as np

from edgeact.errors import RuntimeUnavailableError

THREADS = 2
# onnxruntime rewrites DequantizeLinear(int8 weight) -> MatMul that no int8 kernel takes (an int16 or float input)
# into MatMulNBits, which by default (accuracy level 4) quantizes that input to int8 blockwise; level 1 computes in
# float32, as the QDQ model is written. Only the weight-only rewrite reads it: int8 QDQ models run as before.
QDQ_SESSION_CONFIG = {"session.qdq_matmulnbits_accuracy_level": "1"}


def ort_session(model: bytes, what: str = "model", spinning: bool = True, arena: bool = True, threads: int = THREADS):
    """An onnxruntime CPU session for serialised ``model``; a refusal names ``what``. ``spinning=False`` for one
    of many sessions run in turn (idle threads of the others would otherwise spin on the same cores);
    ``arena=False`` where many sessions stay alive at once (each arena keeps its peak allocation: sixteen segments'
    arenas added up to a gigabyte on a detector). ``threads=1`` for a session several callers run at once, one run
    each per core."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - a dependency of edgeact
        raise RuntimeUnavailableError("onnxruntime is not installed (pip install onnxruntime)") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_cpu_mem_arena = arena
    for key, value in QDQ_SESSION_CONFIG.items():
        options.add_session_config_entry(key, value)
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise RuntimeUnavailableError(f"onnxruntime refuses the {what}: {exc}") from exc


def run_ort(session, feeds: dict[str, np.ndarray], outputs: list[str] | None = None) -> dict[str, np.ndarray]:
    """Run and return outputs by name."""
    names = outputs or [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))
