"""Every backend behind one protocol (edgeact.runtimes.backends): the registry covers every backend a profile may
name, each backend does what its capabilities say on real runtimes, and no code outside that module branches on a
backend's name."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

import edgeact
from edgeact.errors import DeviceProfileError, RuntimeUnavailableError
from edgeact.graph.tflite_import import read_tflite
from edgeact.hardware import load_profile
from edgeact.hardware import profiles as profile_schema
from edgeact.profiler.backends import latency_ms, run_device
from edgeact.runtimes.backends import (
    BACKENDS,
    backend_class,
    backend_for,
    check_runs,
    emulator_for,
    named_runner,
    zeros_sample,
)
from edgeact.runtimes.emulator import ARITHMETIC

DIGITS = Path(__file__).parents[1] / "examples" / "digits"
MODEL, CALIB, EVAL = (DIGITS / f"mlp_tanh{suffix}" for suffix in (".onnx", ".calib.npz", ".eval.npz"))
TFLITE_BACKENDS = ["litert-xnnpack", "litert-builtin", "litert-reference", "tflm", "emulator"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("backends")
    result = edgeact.quantize(MODEL, CALIB, output_dir=folder, formats=["onnx-qdq", "tflite"], target="tflm")
    return {form: result.paths[form].read_bytes() for form in ("tflite", "onnx-qdq")}


@pytest.fixture(scope="module")
def samples(models) -> list[list[np.ndarray]]:  # type: ignore[no-untyped-def]
    data = np.load(EVAL)
    x = data[data.files[0]].astype(np.float32)
    return [[x[i : i + 1]] for i in range(8)]


def on(backend: str, base: str = "tflm"):  # type: ignore[no-untyped-def]
    """A built-in profile with another backend (its rules, threads and format stay)."""
    return dataclasses.replace(load_profile(base), backend=backend)


def test_registry_covers_every_backend_and_arithmetic_a_profile_may_name() -> None:
    assert set(BACKENDS) == set(profile_schema.BACKENDS)
    assert set(ARITHMETIC) == set(profile_schema.ARITHMETIC)
    for name in profile_schema.builtin_profiles():
        profile = load_profile(name)
        assert backend_class(profile).capabilities.model_format == profile.model_format, name


@pytest.mark.parametrize("backend", TFLITE_BACKENDS)
def test_every_tflite_backend_runs_the_model_as_its_capabilities_say(models, samples, backend: str) -> None:
    runner = backend_for(on(backend), models["tflite"], source="mlp.tflite")
    outputs = runner.run(samples)
    assert len(outputs) == len(samples) and outputs[0][0].shape == (1, 10) and outputs[0][0].dtype == np.float32
    emulated = emulator_for(load_profile("tflm"), models["tflite"]).run(samples)
    steps = np.abs(np.concatenate([o[0] for o in outputs]) - np.concatenate([e[0] for e in emulated]))
    assert steps.max() <= 0.25 * np.abs(np.concatenate([e[0] for e in emulated])).max()  # the same model ran
    if runner.capabilities.intermediates:
        again, tensors = runner.run_with_intermediates(samples)
        graph = read_tflite(models["tflite"])
        for sample, (mine, every) in enumerate(zip(again, tensors, strict=True)):
            np.testing.assert_array_equal(mine[0], outputs[sample][0])
            np.testing.assert_array_equal(every[graph.outputs[0]], outputs[sample][0])
            assert len(every) >= len(graph.ops)
    else:
        with pytest.raises(RuntimeUnavailableError, match="does not show intermediate tensors"):
            runner.run_with_intermediates(samples)
    if runner.capabilities.timed:
        times = runner.latency(samples[0], runs=3, warmup=1)
        assert len(times) == 3 and min(times) > 0
    else:
        assert runner.capabilities.emulated
        with pytest.raises(RuntimeUnavailableError, match="no timing"):
            runner.latency(samples[0], runs=3, warmup=1)


def test_reference_kernels_and_tflite_micro_agree_with_the_emulator_under_their_profiles(models, samples) -> None:
    """The profiles' rules are the emulator's only source: under them it is bit-exact with each runtime."""
    for profile in ("litert-reference", "tflm", "litert-xnnpack"):
        device = backend_for(load_profile(profile), models["tflite"]).run(samples)
        emulated = emulator_for(load_profile(profile), models["tflite"]).run(samples)
        for got, mine in zip(device, emulated, strict=True):
            np.testing.assert_array_equal(got[0], mine[0], err_msg=profile)


def test_profiler_asks_capabilities(models, samples) -> None:
    """run_device keeps tensors only where the backend shows them; latency only where it can be timed."""
    kept = run_device(on("litert-reference"), models["tflite"], None, samples, keep_tensors=True)
    hidden = run_device(on("tflm"), models["tflite"], None, samples, keep_tensors=True)
    assert kept.tensors is not None and hidden.tensors is None
    for a, b in zip(kept.outputs, hidden.outputs, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
    assert latency_ms(load_profile("cmsis-nn"), models["tflite"], samples[0], runs=2) is None
    timing = latency_ms(load_profile("tflm"), models["tflite"], samples[0], runs=4, warmup=1)
    assert timing["runs"] == 4 and 0 < timing["median"] <= timing["p95"]


def test_named_runner_and_check_runs(models, samples) -> None:
    """What api.py needs: one sample by name on a target's backend, the int8 ONNX model on onnxruntime, and a load-
    and-invoke check on zeros before a file is written."""
    graph = read_tflite(models["tflite"])
    for backend in ("tflm", "emulator"):
        run = named_runner(backend_for(on(backend), models["tflite"]), ["x"], ["logits"])
        assert run({"x": samples[0][0]})["logits"].shape == (1, 10)
        check_runs(on(backend), models["tflite"], graph, "int8 .tflite")
    onnx = backend_for(load_profile("onnxruntime-cpu"), models["onnx-qdq"], source="int8 ONNX model")
    by_name = named_runner(onnx)
    assert onnx.inputs == ["x"] and list(by_name({"x": samples[0][0]})) == onnx.outputs
    assert [z.shape for z in zeros_sample(graph)] == [(1, 64)]
    with pytest.raises(RuntimeUnavailableError, match="refuses the broken model"):
        backend_for(load_profile("onnxruntime-cpu"), b"not onnx", source="broken model").run(samples)


def test_a_profile_whose_backend_cannot_run_its_format_is_refused(models) -> None:
    profile = dataclasses.replace(load_profile("tflm"), model_format="onnx")
    with pytest.raises(DeviceProfileError, match="backend 'tflm' runs .tflite models, not model_format 'onnx'"):
        backend_for(profile, models["tflite"])
    with pytest.raises(DeviceProfileError, match="backend 'gpu' is not one of"):
        backend_class(dataclasses.replace(profile, backend="gpu"))


# Only the backends module maps a backend's name to code (pipeline/evaluate.py: until it is switched over to it).
NAME_BRANCH = re.compile(r"""backend\s*(==|!=|\bin\b|\bnot in\b)\s*[("']|[("']\s*(==|!=)\s*\w*\.?backend\b""")
ALLOWED = {"runtimes/backends.py"}


def test_no_code_branches_on_a_backend_name() -> None:
    root = Path(edgeact.__file__).parent
    found = [f"{path.relative_to(root)}:{number}: {line.strip()}"
             for path in sorted(root.rglob("*.py")) if str(path.relative_to(root)) not in ALLOWED
             for number, line in enumerate(path.read_text().splitlines(), 1) if NAME_BRANCH.search(line)]
    assert not found, found
