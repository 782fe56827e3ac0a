"""MTCNN's O-Net (facenet-pytorch 2.6.0, ``facenet_pytorch/models/mtcnn.py``) with its published weights.

The architecture is copied here (facenet_pytorch itself pins old torch and needs torchvision); the weights are the
wheel's ``facenet_pytorch/data/onet.pt`` state_dict. ``edgeact quantize bench/zoo/onet.py:build_onet`` loads this
file by path, so it imports nothing from the harness: the weights path comes from ``$EDGEACT_ZOO_ONET_WEIGHTS`` (the
harness sets it), else the default zoo cache location.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

WEIGHTS_ENV = "EDGEACT_ZOO_ONET_WEIGHTS"
DEFAULT_WEIGHTS = Path(os.environ.get("EDGEACT_ZOO_CACHE") or Path.home() / ".cache" / "edgeact-zoo") / (
    "models/facenet-pytorch-2.6.0/facenet_pytorch/data/onet.pt"
)


class ONet(nn.Module):
    """MTCNN O-Net: 48x48 RGB crop -> (box regression [N,4], landmarks [N,10], face probability [N,2])."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


def weights_path() -> Path:
    """Where the O-Net state_dict is read from."""
    return Path(os.environ.get(WEIGHTS_ENV) or DEFAULT_WEIGHTS)


def build_onet() -> ONet:
    """The O-Net in eval mode with facenet-pytorch's published weights."""
    model = ONet()
    model.load_state_dict(torch.load(weights_path(), map_location="cpu", weights_only=True))
    return model.eval()


def export_onnx(path: Path, input_name: str, output_names: list[str]) -> Path:
    """The fp32 O-Net as ONNX (torch.onnx TorchScript exporter, opset 17, dynamic batch) for the baselines."""
    model = build_onet()
    example = torch.zeros(1, 3, 48, 48)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=17, input_names=[input_name],
                      output_names=output_names, dynamic_axes={n: {0: "N"} for n in [input_name, *output_names]})
    return path
