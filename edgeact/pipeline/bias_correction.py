"""Stage 3b, ``bias correction``: fold the mean int8-vs-float output error of every quantized Conv/Gemm into its
bias, measured on calibration samples (empirical bias correction, as AIMET and NNCF do it).

Quantizing weights and inputs shifts each output channel's mean (rounding is unbiased on average, clipping and
per-channel weight rounding are not), and the shifts add up layer after layer. For every bias the plan quantizes,
the correction is ``mean(int8 layer output) - mean(float layer output)`` per output channel, on the int8 model
whose earlier biases are already corrected: biases are corrected in *levels* (a bias's level is one more than the
deepest corrected bias upstream of it), one pass of the samples per level, so that each layer sees the corrected
layers before it (correcting every bias from one pass over-corrects chains and diverges on deep detectors).

The plan owns the result: each corrected bias is new int32 codes on the same grid, so every form (ONNX and TFLite)
carries it. The measuring model is the onnx-qdq form with the corrected biases left float and fed per level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edgeact.analysis.sensitivity import samples_in
from edgeact.exporters.onnx import export_onnx
from edgeact.graph.importer import model_bytes
from edgeact.graph.observe import with_fed_initializers, with_float_outputs
from edgeact.graph.segments import cut
from edgeact.graph.view import GraphView
from edgeact.metrics import sqnr_db
from edgeact.numerics import PerChannelQParams
from edgeact.numerics.qparams import dequantize_codes, quantize_per_channel
from edgeact.pipeline.prepare import Prepared
from edgeact.planning.plan import QuantPlan
from edgeact.planning.registry import quantizer_for
from edgeact.runtimes.onnxruntime import ort_session, run_ort

SAMPLES = 64  # calibration samples the correction is measured on (fewer: noisier shifts)
SEGMENTS = 16  # pieces the measuring model is cut into: a level reruns only the ones it needs
CACHE_BYTES = 256 << 20  # values kept between levels, all batches together (past it, a batch reruns from its inputs)
Feeds = dict[str, np.ndarray]


@dataclass
class _Bias:
    """One bias constant the plan quantizes, and the nodes (one, or an unrolled recurrent layer's steps) it feeds."""

    constant: str
    grid: PerChannelQParams
    original: np.ndarray  # the model's float bias, flat
    nodes: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    axes: list[int] = field(default_factory=list)  # the output axis the bias adds along, per node
    level: int = 0
    shift: np.ndarray | None = None  # what was subtracted from the float bias

    def codes(self) -> np.ndarray:
        corrected = self.original - (self.shift if self.shift is not None else 0.0)
        return quantize_per_channel(corrected, self.grid).astype(np.int32)

    def fed(self) -> np.ndarray:
        """The bias the int8 kernel adds, as float32 (its codes dequantized): what the measuring model is fed."""
        return dequantize_codes(self.codes(), self.grid).astype(np.float32).reshape(self.original.shape)


def _biases(view: GraphView, plan: QuantPlan) -> tuple[dict[str, _Bias], list[dict[str, str]]]:
    """Every bias the ONNX forms quantize, by constant; those that cannot be corrected, with why."""
    biases: dict[str, _Bias] = {}
    skipped: dict[str, str] = {}
    nodes = {node.name: node for node in view.nodes}
    for constant in plan.constants:
        if constant.role != "bias" or not constant.constant:
            continue
        node, name = nodes[constant.node], constant.constant
        known = biases.get(name)
        value = np.asarray(view.values[name].constant, np.float64)
        if "onnx-qdq" not in constant.formats:
            skipped[name] = "int32 in TFLite only (the ONNX forms keep it float): not measured"
        elif value.size == 1:
            skipped[name] = "one value broadcast over every channel: no per-channel correction"
        elif known is not None and known.grid != constant.grid:
            skipped[name] = "the same bias constant is read on two grids"
        if name in skipped:
            continue
        if known is None:
            known = biases[name] = _Bias(name, constant.grid, value)
        quantizer = quantizer_for(node)
        known.nodes.append(node.name)
        known.outputs.append(node.outputs[0])
        known.axes.append(quantizer.bias_axis if quantizer is not None else -1)
    for name in skipped:
        biases.pop(name, None)
    return biases, [{"constant": name, "why": why} for name, why in sorted(skipped.items())]


def _assign_levels(view: GraphView, biases: dict[str, _Bias]) -> list[int]:
    """Each bias's level: 1 + the deepest corrected node upstream of its first node (graph order is topological).
    A constant shared by several nodes is corrected at its earliest node's level, from all of them."""
    owner = {node: bias for bias in biases.values() for node in bias.nodes}
    value_level: dict[str, int] = {}
    for node in view.nodes:
        upstream = max((value_level.get(name, 0) for name in node.inputs if name), default=0)
        level = upstream + (1 if node.name in owner else 0)
        for name in node.outputs:
            value_level[name] = level
        bias = owner.get(node.name)
        if bias is not None and not bias.level:
            bias.level = level
    return sorted({bias.level for bias in biases.values()})


class _ChannelMeans:
    """Per output channel, the running mean of values (float64 sums; memory does not grow with samples)."""

    def __init__(self) -> None:
        self.sums: dict[str, np.ndarray] = {}
        self.squares: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, name: str, values: np.ndarray, axis: int) -> None:
        moved = np.moveaxis(values.astype(np.float64), axis, 0)
        flat = moved.reshape(moved.shape[0], -1)
        self.sums[name] = self.sums.get(name, 0.0) + flat.sum(axis=1)
        self.squares[name] = self.squares.get(name, 0.0) + float(np.square(flat).sum())
        self.counts[name] = self.counts.get(name, 0) + flat.shape[1]

    def mean(self, name: str) -> np.ndarray:
        return self.sums[name] / max(self.counts[name], 1)

    def rms(self, name: str) -> float:
        """Root mean square over every value (all channels)."""
        return float(np.sqrt(self.squares[name] / max(self.counts[name] * self.sums[name].size, 1)))


class _SegmentedRun:
    """The measuring model cut into segments. A level reruns only the segments from the first one reading a bias
    just corrected to the last one writing a value it measures; each batch keeps only the values crossing into the
    segments later runs start from, within CACHE_BYTES in all (a batch past that reruns from its graph inputs): the
    activations held between levels stay bounded however many samples are measured (the samples themselves and the
    model's outputs on them are held, as ``--budget`` holds its samples)."""

    def __init__(self, payload: bytes, biases: list[str], measured: dict[str, int], batches: Sequence[Feeds],
                 count: int) -> None:
        self.segments = cut(payload, count)
        self.sessions = [ort_session(with_fed_initializers(s.payload, [b for b in biases if b in s.reads]),
                                     f"int8 model segment {i} (bias correction)", spinning=False, arena=False)
                         for i, s in enumerate(self.segments)]
        self.fed_names = {v.name for session in self.sessions
                          for v in (*session.get_inputs(), *session.get_overridable_initializers())}
        self.measured = measured
        self.made_by = {name: i for i, s in enumerate(self.segments) for name in s.outputs}
        self.batches = [dict(batch) for batch in batches]
        self.cache: list[tuple[int, Feeds] | None] = [None] * len(self.batches)  # (first segment it feeds, values)

    @property
    def last(self) -> int:
        return len(self.segments) - 1

    def reading(self, names: set[str]) -> int:
        """The first segment reading any of ``names`` (0 when none is given)."""
        return min((i for i, s in enumerate(self.segments) if s.reads & names), default=0)

    def writing(self, names: set[str]) -> int:
        """The last segment writing any of ``names``."""
        return max((i for i, s in enumerate(self.segments) if set(s.outputs) & names), default=self.last)

    def _crossing(self, start: int) -> set[str]:
        """Values segments from ``start`` on read that earlier segments write."""
        return {name for s in self.segments[start:] for name in s.inputs if self.made_by.get(name, start) < start}

    def run(self, first: int, last: int, fed: Feeds, keep_from: int, wanted: set[str],
            outputs: Sequence[str] = ()) -> tuple[_ChannelMeans, list[Feeds]]:
        """Segments ``first``..``last`` over every batch (from its graph inputs when its cache does not feed
        ``first``): channel means of the ``wanted`` measured values, and the values ``outputs`` per batch.
        Afterwards each batch caches what segments from ``keep_from`` (where the next run starts) read from earlier
        ones. A segment returns only what is read later in the run, kept, measured or asked for."""
        means, results, kept, cached = _ChannelMeans(), [], self._crossing(keep_from), 0
        for index, batch in enumerate(self.batches):
            cache = self.cache[index]
            start, values = (first, {**batch, **cache[1]}) if cache is not None and cache[0] == first \
                else (0, dict(batch))
            for number in range(start, last + 1):
                segment = self.segments[number]
                later = {name for s in self.segments[number + 1:last + 1] for name in s.inputs}
                names = [n for n in segment.outputs if n in later or n in kept or n in wanted or n in outputs]
                feeds = {name: values[name] for name in segment.inputs}
                feeds.update({name: array for name, array in fed.items() if name in segment.reads})
                made = run_ort(self.sessions[number], feeds, names)
                for name in [name for name in made if name in wanted]:
                    means.add(name, made[name], self.measured[name])
                values.update({name: made[name] for name in made if name in later or name in kept or name in outputs})
            results.append({name: values[name] for name in outputs})
            keep = {name: values[name] for name in kept if name in values} if kept <= values.keys() else None
            size = sum(array.nbytes for array in keep.values()) if keep is not None else 0
            self.cache[index] = (keep_from, keep) if keep is not None and cached + size <= CACHE_BYTES else None
            cached += size if self.cache[index] is not None else 0
        return means, results


def correct_biases(prepared: Prepared, plan: QuantPlan, batches: Sequence[Feeds],
                   progress: bool = False) -> tuple[QuantPlan, dict[str, Any]]:
    """``plan`` with every quantized bias corrected for the mean output error on ``batches``, and the record of it
    (per bias: its level and how far it moved against the layer's output; the worst output's SQNR on the samples
    before and after)."""
    biases, skipped = _biases(prepared.view, plan)
    if not biases or not batches:
        why = ("no quantized bias to correct" + (" (see skipped)" if skipped else "") if not biases
               else "no calibration samples (--stats only)")
        return plan, {"applied": False, "why": why, "skipped": skipped}
    measured = {out: axis for bias in biases.values() for out, axis in zip(bias.outputs, bias.axes, strict=True)}
    graph_outputs = [value.name for value in prepared.model.graph.outputs if value.dtype is not None
                     and value.dtype.is_floating_point()]
    floats, reference = _float_pass(prepared, batches, measured, graph_outputs)
    runner = _SegmentedRun(_measuring_model(prepared, plan, biases, list(measured)), list(biases), measured,
                           batches, SEGMENTS)
    for name in [name for name in biases if name not in runner.fed_names]:
        skipped.append({"constant": name, "why": "not an initializer of the model"})
        del biases[name]
    levels = _assign_levels(prepared.view, biases)

    def fed() -> Feeds:
        return {bias.constant: bias.fed() for bias in biases.values()}

    due = [[bias for bias in biases.values() if bias.level == level] for level in levels]
    starts = [0, *(runner.reading({b.constant for b in previous}) for previous in [[], *due])]  # each run's first
    starts[-1] = min([starts[-1], *(runner.made_by.get(name, 0) for name in graph_outputs)])  # every output anew
    results = runner.run(0, runner.last, fed(), starts[1], set(), graph_outputs)[1]
    before = _worst_sqnr(results, reference, graph_outputs)
    for number, start in enumerate(_progress(starts[1:-1], progress)):
        wanted = {out for bias in due[number] for out in bias.outputs}
        means, _ = runner.run(start, runner.writing(wanted), fed(), starts[number + 2], wanted)
        for bias in due[number]:
            error = np.mean([means.mean(out) - floats.mean(out) for out in bias.outputs], axis=0)
            bias.shift = error.reshape(bias.original.shape) if error.size == bias.original.size else None
    results = runner.run(starts[-1], runner.last, fed(), len(runner.segments), set(), graph_outputs)[1]
    after = _worst_sqnr(results, reference, graph_outputs)
    corrected = {bias.constant: bias for bias in biases.values() if bias.shift is not None}
    constants = [replace(c, codes=corrected[c.constant].codes()) if c.role == "bias" and c.constant in corrected
                 and c.grid == corrected[c.constant].grid else c for c in plan.constants]
    return replace(plan, constants=constants), {
        "applied": True, "samples": samples_in(prepared, batches), "levels": len(levels),
        **({"worst_output_sqnr_db": {"before": before, "after": after}} if before is not None else {}),
        "biases": [_entry(bias, floats) for bias in sorted(corrected.values(), key=lambda b: b.level)],
        "skipped": skipped}


def _float_pass(prepared: Prepared, batches: Sequence[Feeds], measured: dict[str, int],
                graph_outputs: list[str]) -> tuple[_ChannelMeans, list[Feeds]]:
    """The float model's channel means of every measured value, and its graph outputs per batch."""
    session = ort_session(with_float_outputs(model_bytes(prepared.model), list(measured)),
                          "float model (bias correction)", spinning=False)
    floats, reference = _ChannelMeans(), []
    for batch in batches:
        results = run_ort(session, batch, [*measured, *graph_outputs])
        reference.append({name: results[name] for name in graph_outputs})
        for name, axis in measured.items():
            floats.add(name, results[name], axis)
    return floats, reference


def _worst_sqnr(results: list[Feeds], reference: list[Feeds], names: list[str]) -> float | None:
    """The lowest SQNR over the float graph outputs ``names`` (None when the model has none)."""
    return min((sqnr_db(np.concatenate([r[n].reshape(-1) for r in reference]),
                        np.concatenate([r[n].reshape(-1) for r in results])) for n in names), default=None)


def _entry(bias: _Bias, floats: _ChannelMeans) -> dict[str, Any]:
    shift = np.asarray(bias.shift, np.float64).reshape(-1)
    return {"constant": bias.constant, "nodes": bias.nodes, "level": bias.level,
            "max_shift": float(np.abs(shift).max()), "rms_shift": float(np.sqrt(np.mean(shift ** 2))),
            "output_rms": float(np.mean([floats.rms(out) for out in bias.outputs]))}


def _measuring_model(prepared: Prepared, plan: QuantPlan, biases: dict[str, _Bias], outputs: list[str]) -> bytes:
    """The onnx-qdq form with the corrected biases left float (fed per level) and each layer's output added."""
    kept = [c for c in plan.constants if not (c.role == "bias" and c.constant in biases)]
    payload = export_onnx(prepared.model, replace(plan, constants=kept), "onnx-qdq")
    return with_fed_initializers(with_float_outputs(payload, outputs), list(biases))


def _progress(levels: list[int], progress: bool):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(levels, desc="bias correction", unit="level", leave=False, disable=None if progress else True)
