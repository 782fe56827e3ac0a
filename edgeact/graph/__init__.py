"""ONNX in, canonical graph out: import checks, named passes, fusions, and a plain view for the planner.

Only this package and :mod:`edgeact.exporters` import onnx / onnx-ir / onnxscript.
"""

from edgeact.graph.importer import load_onnx
from edgeact.graph.passes import canonicalise
from edgeact.graph.view import GraphView, NodeView, ValueView, view_of

__all__ = ["GraphView", "NodeView", "ValueView", "canonicalise", "load_onnx", "view_of"]
