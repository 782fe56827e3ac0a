"""Run .tflite models on LiteRT (``ai-edge-litert``; ``tflite_runtime`` only if that is what is installed)."""

from __future__ import annotations

from enum import Enum
from typing import Any

import numpy as np

from edgeact.errors import RuntimeUnavailableError
from edgeact.runtimes import UNNAMED_MODEL, timed_runs
from edgeact.runtimes.native_output import native_stderr
from edgeact.runtimes.tflite_verify import verify_tflite


class LiteRTKernels(str, Enum):
    """Which kernels LiteRT uses."""

    XNNPACK = "xnnpack"  # default interpreter: XNNPACK delegate where it takes the op
    BUILTIN = "builtin"  # optimized builtin kernels, no delegate
    REFERENCE = "reference"  # builtin reference kernels, no delegate


def _interpreter_module() -> Any:
    try:
        from ai_edge_litert import interpreter
    except ImportError:
        try:
            from tflite_runtime import interpreter  # type: ignore[no-redef]
        except ImportError:
            raise RuntimeUnavailableError(
                "LiteRT is not installed: pip install ai-edge-litert"
            ) from None
    return interpreter


def litert_interpreter(
    model: bytes, kernels: LiteRTKernels | str = LiteRTKernels.XNNPACK, threads: int = 1, keep_tensors: bool = False,
    source: str = UNNAMED_MODEL,
) -> Any:
    """A LiteRT interpreter for ``model`` with tensors allocated (``keep_tensors``: intermediates stay readable).
    The model is verified first (errors name ``source``): LiteRT must never read a malformed flatbuffer."""
    verify_tflite(model, source)
    module = _interpreter_module()
    resolver = {
        LiteRTKernels.XNNPACK: module.OpResolverType.AUTO,
        LiteRTKernels.BUILTIN: module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        LiteRTKernels.REFERENCE: module.OpResolverType.BUILTIN_REF,
    }[LiteRTKernels(kernels)]
    with native_stderr() as printed:  # LiteRT's INFO lines; its ERROR lines say why it refused
        try:
            interpreter = module.Interpreter(
                model_content=bytes(model), experimental_op_resolver_type=resolver, num_threads=threads,
                experimental_preserve_all_tensors=keep_tensors,
            )
            interpreter.allocate_tensors()
            refused = None
        except (ValueError, RuntimeError) as exc:
            refused = exc
    if refused is not None:
        said = [line for line in printed.text.splitlines() if not line.startswith("INFO:")]
        detail = f" ({'; '.join(said)})" if said else ""
        raise RuntimeUnavailableError(f"LiteRT refused {source}: {refused}{detail}") from refused
    return interpreter


def run_litert(
    model: bytes, inputs: list[np.ndarray], kernels: LiteRTKernels | str = LiteRTKernels.XNNPACK, threads: int = 1,
    source: str = UNNAMED_MODEL,
) -> list[np.ndarray]:
    """Run ``model`` once on ``inputs`` (in graph input order) and return its outputs."""
    interpreter = litert_interpreter(model, kernels, threads, source=source)
    _set_inputs(interpreter, inputs)
    _invoke(interpreter, source)
    return [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()]


def run_litert_many(
    model: bytes, samples: list[list[np.ndarray]], kernels: LiteRTKernels | str = LiteRTKernels.XNNPACK,
    source: str = UNNAMED_MODEL, threads: int = 1,
) -> list[list[np.ndarray]]:
    """Run ``model`` once per sample with one interpreter (much faster than :func:`run_litert` per sample)."""
    interpreter = litert_interpreter(model, kernels, threads, source=source)
    outputs = interpreter.get_output_details()
    results = []
    for sample in samples:
        _set_inputs(interpreter, sample)
        _invoke(interpreter, source)
        results.append([interpreter.get_tensor(d["index"]).copy() for d in outputs])
    return results


def run_litert_intermediates(
    model: bytes, samples: list[list[np.ndarray]], kernels: LiteRTKernels | str = LiteRTKernels.REFERENCE,
    source: str = UNNAMED_MODEL, threads: int = 1,
) -> tuple[list[list[np.ndarray]], list[dict[int, np.ndarray]]]:
    """Outputs and every tensor (by index) of each sample, with one interpreter that keeps its tensors (a delegate
    hides the tensors inside its partitions: use builtin or reference kernels)."""
    interpreter = litert_interpreter(model, kernels, threads, keep_tensors=True, source=source)
    outputs, every = [], []
    for sample in samples:
        _set_inputs(interpreter, sample)
        _invoke(interpreter, source)
        tensors = _all_tensors(interpreter)
        outputs.append([tensors[d["index"]] for d in interpreter.get_output_details()])
        every.append(tensors)
    return outputs, every


def litert_latency(
    model: bytes, sample: list[np.ndarray], runs: int, warmup: int,
    kernels: LiteRTKernels | str = LiteRTKernels.XNNPACK, threads: int = 1, source: str = UNNAMED_MODEL,
) -> list[float]:
    """Milliseconds of each of ``runs`` invocations on ``sample`` after ``warmup`` untimed ones."""
    interpreter = litert_interpreter(model, kernels, threads, source=source)
    _set_inputs(interpreter, sample)
    return timed_runs(lambda: _invoke(interpreter, source), runs, warmup)


def _set_inputs(interpreter: Any, sample: list[np.ndarray]) -> None:
    for detail, value in zip(interpreter.get_input_details(), sample, strict=True):
        interpreter.set_tensor(detail["index"], np.asarray(value, dtype=detail["dtype"]))


def _invoke(interpreter: Any, source: str) -> None:
    try:
        interpreter.invoke()
    except RuntimeError as exc:
        raise RuntimeUnavailableError(f"LiteRT failed to run {source}: {exc}") from exc


def run_litert_tensors(
    model: bytes, inputs: list[np.ndarray], kernels: LiteRTKernels | str = LiteRTKernels.REFERENCE,
    source: str = UNNAMED_MODEL,
) -> dict[int, np.ndarray]:
    """Run once and return every tensor LiteRT holds afterwards, by index (intermediates included; a delegate
    hides the tensors inside its partitions, so use builtin or reference kernels for per-op comparisons)."""
    interpreter = litert_interpreter(model, kernels, keep_tensors=True, source=source)
    _set_inputs(interpreter, inputs)
    _invoke(interpreter, source)
    return _all_tensors(interpreter)


def _all_tensors(interpreter: Any) -> dict[int, np.ndarray]:
    tensors = {}
    for detail in interpreter.get_tensor_details():
        try:
            tensors[detail["index"]] = interpreter.get_tensor(detail["index"]).copy()
        except ValueError:  # tensors without data (e.g. optional inputs)
            continue
    return tensors


def delegate_partitions(model: bytes, source: str = UNNAMED_MODEL) -> tuple[int, list[str]]:
    """How XNNPACK split ``model``: the number of partitions it runs, and the ops (builtin names, in graph order)
    LiteRT's own kernels run outside them. An op is outside when it writes no partition's output and what it writes
    is read by a partition, is a graph output, or is read by an op outside."""
    interpreter = litert_interpreter(model, LiteRTKernels.XNNPACK, source=source)
    details = interpreter._get_ops_details()  # noqa: SLF001 - the interpreter's nodes, delegates included
    delegates = [d for d in details if d["op_name"] == "DELEGATE"]
    ops = [d for d in details if d["op_name"] != "DELEGATE"]
    written = {int(t) for d in delegates for t in d["outputs"]}
    read = {int(t) for d in delegates for t in d["inputs"]} | {d["index"] for d in interpreter.get_output_details()}
    readers: dict[int, list[int]] = {}
    for position, op in enumerate(ops):
        for tensor in op["inputs"]:
            readers.setdefault(int(tensor), []).append(position)
    outside = [False] * len(ops)
    for position in reversed(range(len(ops))):  # readers come later in the graph: decided first
        outputs = [int(t) for t in ops[position]["outputs"]]
        if not any(t in written for t in outputs):
            outside[position] = not delegates or any(
                t in read or any(outside[r] for r in readers.get(t, ())) for t in outputs)
    return len(delegates), [op["op_name"] for op, out in zip(ops, outside, strict=True) if out]


def delegated_op_names(model: bytes) -> list[str]:
    """Names of the ops in LiteRT's execution plan under XNNPACK ('DELEGATE' where XNNPACK took ops)."""
    interpreter = litert_interpreter(model, LiteRTKernels.XNNPACK)
    return [op["op_name"] for op in interpreter._get_ops_details()]  # noqa: SLF001 - public in spirit
