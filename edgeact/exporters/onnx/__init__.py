"""ONNX exporters: the plan written as QDQ (standard ops between Q/DQ) or with activations as int8 Gather tables."""

from edgeact.exporters.onnx.qdq import FORMATS, export_onnx

__all__ = ["FORMATS", "export_onnx"]
