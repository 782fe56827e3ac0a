"""Train the example models on scikit-learn's bundled digits (8x8 images, 1,797 samples) and export them to ONNX.

    python -m examples.train_digits            # rewrites examples/digits/ (deterministic: seeds, 1 thread)

Writes, for each model, <name>.onnx, <name>.calib.npz (200 samples) and <name>.eval.npz (500 samples), plus
labels.npz (the eval labels). Inputs are the images scaled to [0, 1]; each model sees them in its own layout:
mlp_tanh [N, 64]; transformer_gelu and lstm [N, 8, 8] (rows as tokens / time steps); cnn_silu [N, 1, 8, 8].
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

FOLDER = Path(__file__).parent / "digits"
SEED, TRAIN, CALIB, EVAL = 0, 1097, 200, 500


class MlpTanh(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TransformerGelu(nn.Module):
    """One pre-LN encoder block over the 8 image rows (tokens of 8 pixels), then mean pooling."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.embed = nn.Linear(8, width)
        self.position = nn.Parameter(torch.zeros(8, width))
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
        self.head = nn.Linear(width, 10)
        self.scale = width**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.position
        q, k, v = self.qkv(self.norm1(h)).chunk(3, dim=-1)
        attention = torch.softmax(q @ k.transpose(1, 2) * self.scale, dim=-1)
        h = h + self.proj(attention @ v)
        h = h + self.mlp(self.norm2(h))
        return self.head(h.mean(dim=1))


class Lstm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(8, 32, batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(x)
        return self.head(y[:, -1])


class CnnSilu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.SiLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.SiLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


MODELS = {
    "mlp_tanh": (MlpTanh, (64,)),
    "transformer_gelu": (TransformerGelu, (8, 8)),
    "lstm": (Lstm, (8, 8)),
    "cnn_silu": (CnnSilu, (1, 8, 8)),
}


def split() -> tuple[np.ndarray, ...]:
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    order = np.random.default_rng(SEED).permutation(len(images))
    train, calib, test = np.split(order, [TRAIN, TRAIN + CALIB])
    return images[train], digits.target[train], images[calib], images[test], digits.target[test]


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 60) -> None:
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(SEED)
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(64):
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()


def main(folder: Path = FOLDER) -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y, calib_x, eval_x, eval_y = split()
    np.savez_compressed(folder / "labels.npz", labels=eval_y.astype(np.int64))
    for name, (build, shape) in MODELS.items():
        torch.manual_seed(SEED)
        model = build()
        train(model, torch.from_numpy(train_x.reshape(-1, *shape)), torch.from_numpy(train_y))
        model.eval()
        with torch.no_grad():
            accuracy = (model(torch.from_numpy(eval_x.reshape(-1, *shape))).argmax(1).numpy() == eval_y).mean()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.from_numpy(eval_x[:1].reshape(1, *shape)),), folder / f"{name}.onnx",
                              dynamo=False, opset_version=17, input_names=["x"], output_names=["logits"],
                              dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})
        np.savez_compressed(folder / f"{name}.calib.npz", x=calib_x.reshape(-1, *shape))
        np.savez_compressed(folder / f"{name}.eval.npz", x=eval_x.reshape(-1, *shape))
        print(f"{name}: float accuracy {accuracy:.3f} on {len(eval_y)} eval digits -> {folder / name}.onnx")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER)
