"""Every backend edgeact runs models on, behind one protocol: onnxruntime, LiteRT (XNNPACK, builtin or reference
kernels), TFLite Micro, and edgeact's integer emulator (for targets with no runtime here).

A device profile's ``backend`` value names its class in :data:`BACKENDS`; :func:`backend_for` builds it. Code that
runs a model asks a backend's :class:`Capabilities` (does it show intermediate tensors? can it be timed?), never its
name: this module is the only place a backend name maps to code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from edgeact.errors import DeviceProfileError, ModelFormatError, RuntimeUnavailableError
from edgeact.hardware.profiles import DeviceProfile
from edgeact.numerics import dequantize, quantize
from edgeact.runtimes import UNNAMED_MODEL, timed_runs
from edgeact.runtimes.emulator import Rules, emulate, rules_for
from edgeact.runtimes.litert import (
    LiteRTKernels,
    delegate_partitions,
    litert_latency,
    run_litert_intermediates,
    run_litert_many,
)
from edgeact.runtimes.onnxruntime import ort_session, run_ort
from edgeact.runtimes.tflm import run_tflm_many, tflm_latency
from edgeact.tflite.graph import LoweredGraph

Sample = list[np.ndarray]  # one value per model input, in the model's input order
Outputs = list[np.ndarray]  # one value per model output, in the model's output order
Tensors = dict[int, np.ndarray]  # every tensor of a run, by its index in the .tflite subgraph
Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]  # one sample by input name -> outputs by name


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, asked instead of its name."""

    model_format: str  # the model file it runs: tflite | onnx
    intermediates: bool  # run_with_intermediates shows every tensor of the run
    timed: bool  # latency() times the real runtime (an emulator has no timing)
    emulated: bool = False  # edgeact's emulator stands in for a device that has no runtime here
    isolated: bool = False  # the runtime runs in a child process: a crash is an error naming the model
    u8s8_saturation_without_vnni: bool = False  # its u8 x s8 int8 GEMMs can saturate on x86 without VNNI
    delegate: bool = False  # a delegate takes what it can: partitions() says how it split the model


class Backend(ABC):
    """A model loaded on one backend. ``run`` and ``run_with_intermediates`` take samples (one array per model
    input, in the model's order) and return, per sample, the outputs in the model's order."""

    capabilities: ClassVar[Capabilities]

    def __init__(self, payload: bytes, source: str = UNNAMED_MODEL, threads: int = 1) -> None:
        self.payload, self.source, self.threads = bytes(payload), source, threads

    @classmethod
    def from_profile(cls, profile: DeviceProfile, payload: bytes, graph: LoweredGraph | None = None,
                     source: str = UNNAMED_MODEL) -> Backend:
        """The backend for ``profile`` (``graph``: ``payload`` as read by ``read_tflite``, when the caller has it)."""
        return cls(payload, source, profile.threads)

    @property
    @abstractmethod
    def inputs(self) -> list[str]:
        """The model's input names, in its order."""

    @property
    @abstractmethod
    def outputs(self) -> list[str]:
        """The model's output names, in its order."""

    @abstractmethod
    def run(self, samples: Sequence[Sample]) -> list[Outputs]:
        """The outputs of every sample."""

    def run_with_intermediates(self, samples: Sequence[Sample]) -> tuple[list[Outputs], list[Tensors]]:
        """The outputs and every tensor of every sample (only where ``capabilities.intermediates``)."""
        raise RuntimeUnavailableError(f"{type(self).__name__} does not show intermediate tensors")

    def latency(self, sample: Sample, runs: int, warmup: int) -> list[float]:
        """Milliseconds of each of ``runs`` runs of ``sample`` after ``warmup`` untimed ones (only where
        ``capabilities.timed``)."""
        raise RuntimeUnavailableError(f"{type(self).__name__} has no timing (it is emulated here)")


class OnnxRuntimeBackend(Backend):
    """onnxruntime's CPU execution provider on an ONNX model."""

    capabilities = Capabilities("onnx", intermediates=False, timed=True, u8s8_saturation_without_vnni=True)

    @cached_property
    def session(self) -> Any:
        return ort_session(self.payload, self.source)

    @property
    def inputs(self) -> list[str]:
        return [i.name for i in self.session.get_inputs()]

    @property
    def outputs(self) -> list[str]:
        return [o.name for o in self.session.get_outputs()]

    def run(self, samples: Sequence[Sample]) -> list[Outputs]:
        names = self.inputs
        return [list(run_ort(self.session, dict(zip(names, sample, strict=True))).values()) for sample in samples]

    def latency(self, sample: Sample, runs: int, warmup: int) -> list[float]:
        feeds = dict(zip(self.inputs, sample, strict=True))
        return timed_runs(lambda: self.session.run(None, feeds), runs, warmup)


class _TFLiteBackend(Backend):
    """A .tflite model; its lowered graph is read from the payload only if a backend needs it."""

    def __init__(self, payload: bytes, source: str = UNNAMED_MODEL, threads: int = 1,
                 graph: LoweredGraph | None = None) -> None:
        super().__init__(payload, source, threads)
        self._graph = graph

    @classmethod
    def from_profile(cls, profile: DeviceProfile, payload: bytes, graph: LoweredGraph | None = None,
                     source: str = UNNAMED_MODEL) -> Backend:
        return cls(payload, source, profile.threads, graph)

    @property
    def graph(self) -> LoweredGraph:
        if self._graph is None:
            from edgeact.graph.tflite_import import read_tflite

            self._graph = read_tflite(self.payload, self.source)
        return self._graph

    @property
    def inputs(self) -> list[str]:
        return [self.graph.tensors[i].name for i in self.graph.inputs]

    @property
    def outputs(self) -> list[str]:
        return [self.graph.tensors[i].name for i in self.graph.outputs]

    # Float samples in, float outputs out, whatever the model's I/O: a graph input of int8 codes (``--io int8``) is
    # fed the sample quantized onto its grid, an int8 graph output is read dequantized. Subclasses run the codes.
    def encode(self, sample: Sample) -> Sample:
        """``sample`` as the model's inputs take it: float values quantized for inputs of int8 codes."""
        grids = [self.graph.tensors[i].codes_grid for i in self.graph.inputs]
        return [quantize(value, grid).astype(grid.dtype) if grid is not None and np.issubdtype(
            np.asarray(value).dtype, np.floating) else value for value, grid in zip(sample, grids, strict=True)]

    def decode(self, outputs: Outputs) -> Outputs:
        """The model's outputs as real values: int8 codes dequantized."""
        grids = [self.graph.tensors[i].codes_grid for i in self.graph.outputs]
        return [dequantize(value, grid).astype(np.float32) if grid is not None else value
                for value, grid in zip(outputs, grids, strict=True)]

    def run(self, samples: Sequence[Sample]) -> list[Outputs]:
        return [self.decode(out) for out in self._run([self.encode(sample) for sample in samples])]

    def run_with_intermediates(self, samples: Sequence[Sample]) -> tuple[list[Outputs], list[Tensors]]:
        outputs, tensors = self._run_with_intermediates([self.encode(sample) for sample in samples])
        return [self.decode(out) for out in outputs], tensors

    def latency(self, sample: Sample, runs: int, warmup: int) -> list[float]:
        return self._latency(self.encode(sample), runs, warmup)

    def _run(self, samples: list[Sample]) -> list[Outputs]:
        raise NotImplementedError

    def _run_with_intermediates(self, samples: list[Sample]) -> tuple[list[Outputs], list[Tensors]]:
        return Backend.run_with_intermediates(self, samples)

    def _latency(self, sample: Sample, runs: int, warmup: int) -> list[float]:
        return Backend.latency(self, sample, runs, warmup)


class LiteRTBackend(_TFLiteBackend):
    """LiteRT's interpreter with one set of kernels (subclasses pick them)."""

    kernels: ClassVar[LiteRTKernels]

    def _run(self, samples: list[Sample]) -> list[Outputs]:
        return run_litert_many(self.payload, samples, self.kernels, self.source, self.threads)

    def _run_with_intermediates(self, samples: list[Sample]) -> tuple[list[Outputs], list[Tensors]]:
        if not self.capabilities.intermediates:
            return Backend.run_with_intermediates(self, samples)
        return run_litert_intermediates(self.payload, samples, self.kernels, self.source, self.threads)

    def _latency(self, sample: Sample, runs: int, warmup: int) -> list[float]:
        return litert_latency(self.payload, sample, runs, warmup, self.kernels, self.threads, self.source)


class LiteRTXnnpackBackend(LiteRTBackend):
    """LiteRT's default interpreter: the XNNPACK delegate takes what it can (and hides the tensors inside it)."""

    kernels = LiteRTKernels.XNNPACK
    capabilities = Capabilities("tflite", intermediates=False, timed=True, delegate=True)

    def partitions(self) -> tuple[int, list[str]]:
        """XNNPACK's partitions of the model, and the ops LiteRT's kernels run outside them."""
        return delegate_partitions(self.payload, self.source)


class LiteRTBuiltinBackend(LiteRTBackend):
    """LiteRT's optimized builtin kernels, no delegate."""

    kernels = LiteRTKernels.BUILTIN
    capabilities = Capabilities("tflite", intermediates=True, timed=True)


class LiteRTReferenceBackend(LiteRTBackend):
    """LiteRT's builtin reference kernels, no delegate."""

    kernels = LiteRTKernels.REFERENCE
    capabilities = Capabilities("tflite", intermediates=True, timed=True)


class TFLMBackend(_TFLiteBackend):
    """TFLite Micro's reference kernels, in edgeact's child process (it times itself there: no pipe round trip in
    the numbers)."""

    capabilities = Capabilities("tflite", intermediates=False, timed=True, isolated=True)

    def _run(self, samples: list[Sample]) -> list[Outputs]:
        return run_tflm_many(self.payload, samples, self.source)

    def _latency(self, sample: Sample, runs: int, warmup: int) -> list[float]:
        return tflm_latency(self.payload, sample, runs, warmup, self.source)


class EmulatorBackend(_TFLiteBackend):
    """edgeact's integer emulator under a device profile's rules (requantization rounding per op, arithmetic,
    activation table conventions)."""

    capabilities = Capabilities("tflite", intermediates=True, timed=False, emulated=True)

    def __init__(self, payload: bytes, rules: Rules, source: str = UNNAMED_MODEL,
                 graph: LoweredGraph | None = None) -> None:
        super().__init__(payload, source, 1, graph)
        self.rules = rules

    @classmethod
    def from_profile(cls, profile: DeviceProfile, payload: bytes, graph: LoweredGraph | None = None,
                     source: str = UNNAMED_MODEL) -> Backend:
        return cls(payload, rules_for(profile), source, graph)

    def _run(self, samples: list[Sample]) -> list[Outputs]:
        return self._run_with_intermediates(samples)[0]

    def _run_with_intermediates(self, samples: list[Sample]) -> tuple[list[Outputs], list[Tensors]]:
        tensors = [self._emulate(sample) for sample in samples]
        return [[t[i] for i in self.graph.outputs] for t in tensors], tensors

    def _emulate(self, sample: Sample) -> Tensors:
        """A graph the emulator cannot run (shapes or parameters that disagree, which the flatbuffer verifier does
        not check) is an error naming the file, not a crash."""
        try:
            return emulate(self.graph, sample, self.rules)
        except (ValueError, IndexError, TypeError) as exc:
            raise ModelFormatError(f"{self.source}: edgeact's integer emulator cannot run it ({exc}); its tensor "
                                   "shapes or operator parameters disagree") from exc


# The device-profile ``backend`` value -> its class (devices.profiles.BACKENDS lists the same names for the validator).
BACKENDS: dict[str, type[Backend]] = {
    "onnxruntime": OnnxRuntimeBackend,
    "litert-xnnpack": LiteRTXnnpackBackend,
    "litert-builtin": LiteRTBuiltinBackend,
    "litert-reference": LiteRTReferenceBackend,
    "tflm": TFLMBackend,
    "emulator": EmulatorBackend,
}


def backend_class(profile: DeviceProfile) -> type[Backend]:
    """The class that runs ``profile``'s models (its capabilities without loading a model)."""
    cls = BACKENDS.get(profile.backend)
    if cls is None:
        raise DeviceProfileError(f"{profile.source}: backend {profile.backend!r} is not one of {', '.join(BACKENDS)}")
    if cls.capabilities.model_format != profile.model_format:
        raise DeviceProfileError(f"{profile.source}: backend {profile.backend!r} runs .{cls.capabilities.model_format}"
                                 f" models, not model_format {profile.model_format!r}")
    return cls


def backend_for(profile: DeviceProfile, payload: bytes, graph: LoweredGraph | None = None,
                source: str = UNNAMED_MODEL) -> Backend:
    """``payload`` loaded on ``profile``'s backend. ``graph``: the model as ``read_tflite(payload)`` reads it, if the
    caller has it (read from ``payload`` otherwise, only by a backend that needs it); errors name ``source``."""
    return backend_class(profile).from_profile(profile, payload, graph, source)


def emulator_for(profile: DeviceProfile, payload: bytes, graph: LoweredGraph | None = None,
                 source: str = UNNAMED_MODEL) -> EmulatorBackend:
    """The emulator under ``profile``'s rules, whatever its backend (the reference a device run is compared to)."""
    return EmulatorBackend(payload, rules_for(profile), source, graph)


def named_runner(backend: Backend, inputs: Sequence[str] | None = None,
                 outputs: Sequence[str] | None = None) -> Runner:
    """One sample at a time by name: feeds by ``inputs`` (the model's inputs, in its order) -> outputs by ``outputs``
    (in the model's order). Both default to the model's own names."""
    names_in = list(inputs if inputs is not None else backend.inputs)
    names_out = list(outputs if outputs is not None else backend.outputs)

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = backend.run([[feeds[name] for name in names_in]])[0]
        return dict(zip(names_out, values, strict=True))

    return run


def zeros_sample(graph: LoweredGraph) -> Sample:
    """All-zero inputs of ``graph``'s shapes and types (to load and invoke a model once before writing it)."""
    return [np.zeros(graph.tensors[i].shape, dtype=graph.tensors[i].dtype) for i in graph.inputs]


def check_runs(profile: DeviceProfile, payload: bytes, graph: LoweredGraph, source: str = UNNAMED_MODEL) -> None:
    """Load ``payload`` on ``profile``'s backend and invoke it once on zeros shaped like ``graph``'s inputs (the graph
    it was written from): never write a file that fails when loaded."""
    backend_for(profile, payload, source=source).run([zeros_sample(graph)])
