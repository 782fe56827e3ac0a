"""Per-layer error: every planned int8 tensor of the QDQ model against the same tensor of the float model.

The QDQ model says which DequantizeLinear output restores each planned tensor (its provenance metadata), so both
models can be asked for the same tensors in one onnxruntime run each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeact.graph.importer import load_onnx_bytes, model_bytes
from edgeact.graph.observe import dequantized_tensors, with_float_outputs
from edgeact.metrics import SqnrSum
from edgeact.planning.plan import QuantPlan
from edgeact.profiler.provenance import ModelProvenance, onnx_dequantized
from edgeact.runtimes.onnxruntime import ort_session, run_ort


@dataclass(frozen=True)
class LayerError:
    tensor: str
    producer: str  # the node that writes the tensor ("" for a graph input)
    sqnr_db: float


def layer_errors(model, plan: QuantPlan, qdq: bytes, batches: list[dict[str, np.ndarray]],  # type: ignore[no-untyped-def]
                 outputs: tuple[str, ...], producers: dict[str, str]) -> list[LayerError]:
    """SQNR of each planned tensor (int8 QDQ model vs float model), worst first."""
    restored = _restored(qdq)
    names = sorted(name for name in plan.grids if name in restored)
    int8_names = [restored[name] for name in names]
    float_session = ort_session(with_float_outputs(model_bytes(model), names), "float model")
    int8_session = ort_session(with_float_outputs(qdq, int8_names), "int8 QDQ model")
    sums = {name: SqnrSum() for name in names}  # streamed: one batch's tensors held at a time
    for feeds in batches:
        reference = run_ort(float_session, feeds, names)
        for name, value in zip(names, run_ort(int8_session, feeds, int8_names).values(), strict=True):
            sums[name].add(reference[name], value)
    errors = [LayerError(name, producers.get(name, ""), sums[name].db) for name in names]
    return sorted(errors, key=lambda e: e.sqnr_db)


def _restored(qdq: bytes) -> dict[str, str]:
    """Planned tensor -> the DequantizeLinear output of the QDQ model that restores it."""
    carried = ModelProvenance(None, dequantized=onnx_dequantized(dict(load_onnx_bytes(qdq).metadata_props)))
    return {value: name for name in dequantized_tensors(qdq) if (value := carried.value_of(name)) is not None}
