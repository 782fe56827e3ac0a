"""The ONNX reference evaluator (onnx.reference) as the emulator of int8 ONNX models: every op computed as the ONNX
specification says, in numpy; QuantizeLinear / DequantizeLinear (opset 13 form, and onnxruntime's com.microsoft ones
that carry int16 codes below opset 21) through edgeact's numerics."""

from __future__ import annotations

import numpy as np

from edgeact.errors import RuntimeUnavailableError
from edgeact.numerics.rounding import clamp, round_half_to_even


def _per_axis(values: np.ndarray, like: np.ndarray, axis: int | None) -> np.ndarray:
    if values.size == 1:
        return values.reshape(())
    shape = [1] * like.ndim
    shape[(axis if axis is not None else 1) % like.ndim] = values.size
    return values.reshape(shape)


def _operators():  # type: ignore[no-untyped-def]
    from onnx.reference.op_run import OpRun

    class QuantizeLinear(OpRun):
        op_domain = ""

        def _run(self, x, scale, zero_point=None, axis=None, saturate=None, **_):  # type: ignore[no-untyped-def]
            dtype = zero_point.dtype if zero_point is not None else np.dtype(np.uint8)
            zp = _per_axis(zero_point.astype(np.int64), x, axis) if zero_point is not None else 0
            codes = round_half_to_even(x.astype(np.float32) / _per_axis(scale, x, axis).astype(np.float32)) + zp
            limits = np.iinfo(dtype)
            return (clamp(codes, limits.min, limits.max).astype(dtype),)

    class DequantizeLinear(OpRun):
        op_domain = ""

        def _run(self, x, scale, zero_point=None, axis=None, **_):  # type: ignore[no-untyped-def]
            zp = _per_axis(zero_point.astype(np.int64), x, axis) if zero_point is not None else 0
            return (((x.astype(np.int64) - zp).astype(np.float32) * _per_axis(scale, x, axis)).astype(np.float32),)

    # onnxruntime's com.microsoft Q/DQ (int16 codes below opset 21) compute the same thing
    contrib = [type(op.__name__, (op,), {"op_domain": "com.microsoft"}) for op in (QuantizeLinear, DequantizeLinear)]
    return [QuantizeLinear, DequantizeLinear, *contrib]


def reference_session(model: bytes):  # type: ignore[no-untyped-def]
    try:
        from onnx.reference import ReferenceEvaluator

        return ReferenceEvaluator(model, new_ops=_operators())
    except Exception as exc:  # the evaluator raises plain errors on unsupported ops
        raise RuntimeUnavailableError(f"the ONNX reference evaluator refuses the model: {exc}") from exc


def run_reference(session, feeds: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    return dict(zip(outputs, session.run(outputs, feeds), strict=True))
