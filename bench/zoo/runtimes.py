"""Run a model form on its runtime, one thread: onnxruntime (.onnx), LiteRT (.tflite), TFLite Micro (.tflite).

Every runner takes one feed (input name -> NCHW float32 array, as the ONNX model wants it) and returns the outputs
in the runner's own order with their names; :func:`align` puts them in the fp32 reference's order and shape.
A runner's ``prepare(feed)`` loads the feed once and returns a zero-argument call that runs one inference (latency).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

Feed = dict[str, np.ndarray]
TFLM_ARENA_START, TFLM_ARENA_TRIES = 1 << 20, 10

ort.set_default_logger_severity(3)  # ddddocr's OCR declares a wrong output shape; onnxruntime warns on every run


class OrtRunner:
    """onnxruntime CPU, ``threads`` intra-op threads (one by default), default graph optimisations (QDQ fused into
    int8 kernels)."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, feed: Feed) -> list[np.ndarray]:
        return self.session.run(None, {name: feed[name] for name in self.input_names})

    def prepare(self, feed: Feed) -> Callable[[], object]:
        feeds = {name: feed[name] for name in self.input_names}
        return lambda: self.session.run(None, feeds)


def _fit_input(value: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``value`` (NCHW) as a tensor of ``shape``: as is, or NHWC when the interpreter wants channels last."""
    if tuple(value.shape) == tuple(shape):
        return value
    if value.ndim == 4 and tuple(value.transpose(0, 2, 3, 1).shape) == tuple(shape):
        return np.ascontiguousarray(value.transpose(0, 2, 3, 1))
    raise ValueError(f"input of shape {list(value.shape)} does not fit the interpreter's {list(shape)}")


def _quantize(value: np.ndarray, dtype: np.dtype, scale: float, zero_point: int) -> np.ndarray:
    if np.issubdtype(dtype, np.floating):
        return value.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(value / scale) + zero_point, info.min, info.max).astype(dtype)


def _dequantize(value: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    if np.issubdtype(value.dtype, np.floating) or not scale:
        return np.asarray(value, dtype=np.float32)
    return ((value.astype(np.float32) - zero_point) * scale).astype(np.float32)


class LiteRTRunner:
    """LiteRT (ai-edge-litert) default interpreter (XNNPACK), ``threads`` threads (one by default); dynamic dims are
    resized to the feed."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=path.read_bytes(), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.inputs = self.interpreter.get_input_details()
        self.output_names = [d["name"] for d in self.interpreter.get_output_details()]

    def _set(self, feed: Feed) -> None:
        values = _by_name_or_order([d["name"] for d in self.inputs], feed)
        resized = False
        for detail, value in zip(self.inputs, values, strict=True):
            if tuple(value.shape) != tuple(detail["shape"]) and -1 in list(detail["shape_signature"]):
                self.interpreter.resize_tensor_input(detail["index"], list(value.shape))
                resized = True
        if resized:
            self.interpreter.allocate_tensors()
            self.inputs = self.interpreter.get_input_details()
        for detail, value in zip(self.inputs, values, strict=True):
            scale, zero_point = detail["quantization"]
            fitted = _fit_input(value, detail["shape"])
            self.interpreter.set_tensor(detail["index"], _quantize(fitted, detail["dtype"], scale, zero_point))

    def __call__(self, feed: Feed) -> list[np.ndarray]:
        self._set(feed)
        self.interpreter.invoke()
        return [_dequantize(self.interpreter.get_tensor(d["index"]), *d["quantization"])
                for d in self.interpreter.get_output_details()]

    def prepare(self, feed: Feed) -> Callable[[], object]:
        self._set(feed)
        return self.interpreter.invoke


def _tflite_io_names(model: bytes) -> tuple[list[str], list[str]]:
    import tflite

    graph = tflite.Model.GetRootAsModel(model, 0).Subgraphs(0)
    inputs = [graph.Tensors(graph.Inputs(i)).Name().decode() for i in range(graph.InputsLength())]
    return inputs, [graph.Tensors(graph.Outputs(i)).Name().decode() for i in range(graph.OutputsLength())]


class TflmRunner:
    """TFLite Micro's Python interpreter (reference kernels); the arena doubles from 1 MiB until the model fits."""

    def __init__(self, path: Path) -> None:
        from tflite_micro.python.tflite_micro import runtime

        from edgeact.runtimes.tflite_verify import verify_tflite

        model = path.read_bytes()
        verify_tflite(model, str(path))  # the bare runtime next: it crashes the process on a malformed file
        self.input_names, self.output_names = _tflite_io_names(model)
        arena, error = TFLM_ARENA_START, None
        for _ in range(TFLM_ARENA_TRIES):
            try:
                self.interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena)
                break
            except RuntimeError as exc:
                arena, error = arena * 2, exc
        else:
            raise RuntimeError(f"TFLite Micro could not allocate the model up to {arena // 2} bytes: {error}")
        self.arena_bytes = arena

    def _set(self, feed: Feed) -> None:
        for index, value in enumerate(_by_name_or_order(self.input_names, feed)):
            detail = self.interpreter.get_input_details(index)
            params = detail.get("quantization_parameters") or {}
            scale = float(params["scales"][0]) if len(params.get("scales", [])) else 0.0
            zero_point = int(params["zero_points"][0]) if len(params.get("zero_points", [])) else 0
            fitted = _fit_input(value, detail["shape"])
            self.interpreter.set_input(np.ascontiguousarray(_quantize(fitted, detail["dtype"], scale, zero_point)),
                                       index)

    def __call__(self, feed: Feed) -> list[np.ndarray]:
        self._set(feed)
        self.interpreter.invoke()
        outputs = []
        for index in range(len(self.output_names)):
            params = self.interpreter.get_output_details(index).get("quantization_parameters") or {}
            scale = float(params["scales"][0]) if len(params.get("scales", [])) else 0.0
            zero_point = int(params["zero_points"][0]) if len(params.get("zero_points", [])) else 0
            outputs.append(_dequantize(np.array(self.interpreter.get_output(index)), scale, zero_point))
        return outputs

    def prepare(self, feed: Feed) -> Callable[[], object]:
        self._set(feed)
        return self.interpreter.invoke


def _by_name_or_order(names: Sequence[str], feed: Feed) -> list[np.ndarray]:
    """Feed values in ``names`` order, matched by name when every name is a feed key, else in feed order."""
    if all(name in feed for name in names):
        return [feed[name] for name in names]
    if len(names) != len(feed):
        raise ValueError(f"the model has inputs {list(names)}, the feed {list(feed)}")
    return list(feed.values())


def align(outputs: Sequence[np.ndarray], names: Sequence[str], reference: Sequence[np.ndarray],
          reference_names: Sequence[str]) -> list[np.ndarray]:
    """``outputs`` in the reference's order (by name, else by unique size, else by position) and shapes."""
    if all(name in names for name in reference_names):
        ordered = [outputs[list(names).index(name)] for name in reference_names]
    elif len({r.size for r in reference}) == len(reference) and sorted(o.size for o in outputs) == sorted(
            r.size for r in reference):
        ordered = [next(o for o in outputs if o.size == r.size) for r in reference]
    else:
        ordered = list(outputs)
    if len(ordered) != len(reference):
        raise ValueError(f"{len(outputs)} outputs {list(names)}; the fp32 model has {list(reference_names)}")
    return [_fit_output(o, r.shape) for o, r in zip(ordered, reference, strict=True)]


def _fit_output(value: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    if tuple(value.shape) == tuple(shape):
        return value
    if value.ndim == 4 and tuple(value.transpose(0, 3, 1, 2).shape) == tuple(shape):
        return np.ascontiguousarray(value.transpose(0, 3, 1, 2))
    if value.size == int(np.prod(shape)):
        return value.reshape(shape)
    raise ValueError(f"output of shape {list(value.shape)} does not fit the fp32 output's {list(shape)}")


def interleaved_latency(fp32: Callable[[], object], int8: Callable[[], object], rounds: int = 20,
                        warmup: int = 3) -> dict[str, float]:
    """Alternate fp32 and int8 runs (after ``warmup`` rounds); medians in ms and int8/fp32."""
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    for index in range(warmup + rounds):
        for key, call in (("fp32", fp32), ("int8", int8)):
            start = time.perf_counter()
            call()
            if index >= warmup:
                times[key].append(time.perf_counter() - start)
    fp32_ms, int8_ms = (1e3 * statistics.median(times[k]) for k in ("fp32", "int8"))
    return {"fp32_ms": fp32_ms, "int8_ms": int8_ms, "ratio": int8_ms / fp32_ms, "rounds": float(rounds)}


RUNNERS: dict[str, type] = {"onnxruntime": OrtRunner, "litert": LiteRTRunner, "tflite-micro": TflmRunner}
