"""A serialised model cut into consecutive segments (runs of nodes in topological order), each a model of its own
whose inputs are the values it reads from earlier segments or the graph, and whose outputs are the values later
segments or the graph read. Running the segments from ``k`` on, with earlier values from a cache, reruns only the
part of the graph downstream of a change in segment ``k``."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import onnx
import onnx.numpy_helper


@dataclass(frozen=True)
class Segment:
    payload: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    reads: frozenset[str]  # every graph input and value the segment's nodes read (switches included)
    fed: Mapping[str, np.ndarray] = field(default_factory=dict)  # inputs a run feeds with these constant arrays

    @cached_property
    def proto(self) -> onnx.ModelProto:
        """The parsed model, once (baking a segment again and again only rewrites its node list)."""
        return onnx.load_model_from_string(self.payload)


def node_reads(node: onnx.NodeProto) -> set[str]:
    """Names a node reads, including outer-scope names its subgraphs (If/Loop/Scan bodies) use."""
    names = {name for name in node.input if name}
    for attribute in node.attribute:
        graphs = list(attribute.graphs) + ([attribute.g] if attribute.HasField("g") else [])
        for graph in graphs:
            inner = {name for n in graph.node for name in n.output} | {i.name for i in graph.input}
            inner |= {init.name for init in graph.initializer}
            names |= {name for n in graph.node for name in node_reads(n) if name not in inner}
    return names


def _subgraph_reads(nodes: list[onnx.NodeProto]) -> set[str]:
    """Outer-scope names the subgraphs of ``nodes`` read."""
    return {name for node in nodes for name in node_reads(node) if name not in node.input}


def _with_inputs(node: onnx.NodeProto, inputs: list[str]) -> onnx.NodeProto:
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    del copy.input[:]
    copy.input.extend(inputs)
    return copy


def _value_types(model: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    inferred = onnx.shape_inference.infer_shapes(model)
    infos = list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    return {info.name: info for info in infos if info.type.HasField("tensor_type")}


def _info(name: str, types: dict[str, onnx.ValueInfoProto]) -> onnx.ValueInfoProto:
    known = types.get(name)
    if known is not None and known.type.tensor_type.elem_type:
        return onnx.helper.make_tensor_value_info(name, known.type.tensor_type.elem_type, None)
    return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)


def cut(payload: bytes, count: int) -> list[Segment]:
    """``payload`` (topologically sorted) as ``count`` segments of about equal node count (fewer for a small
    model); together they compute the model's outputs."""
    model = onnx.load_model_from_string(payload)
    graph = model.graph
    nodes = list(graph.node)
    count = max(1, min(count, len(nodes)))
    bounds = [round(i * len(nodes) / count) for i in range(count + 1)]
    initializers = {init.name: init for init in graph.initializer}
    types = _value_types(model)
    reads = [node_reads(node) for node in nodes]
    graph_outputs = [o.name for o in graph.output]
    segments = []
    for start, stop in zip(bounds, bounds[1:], strict=False):
        made = {name for node in nodes[start:stop] for name in node.output if name}
        read = set().union(*reads[start:stop])
        later = set().union(*reads[stop:]) if stop < len(nodes) else set()
        inputs = sorted(name for name in read if name not in made and name not in initializers)
        outputs = [name for node in nodes[start:stop] for name in node.output
                   if name and (name in later or name in graph_outputs)]
        segment = onnx.helper.make_graph(
            nodes[start:stop], f"{graph.name}_segment_{len(segments)}",
            [_info(name, types) for name in inputs], [_info(name, types) for name in outputs],
            [initializers[name] for name in sorted(read) if name in initializers])
        proto = onnx.helper.make_model(segment, opset_imports=model.opset_import, ir_version=model.ir_version,
                                       functions=model.functions)
        segments.append(Segment(proto.SerializeToString(deterministic=True), tuple(inputs), tuple(outputs),
                                frozenset(read)))
    return segments


def bake(segment: Segment, fixed: Mapping[str, bool], feed: Collection[str] | None = None) -> Segment:
    """``segment`` with every ``Where(switch, on_value, off_value)`` on a switch of ``fixed`` fixed to the side it
    names, those switch inputs dropped and whatever no longer feeds an output removed: a plain model onnxruntime
    optimises like any other. A value that picks a constant (a weight, dequantized or float) becomes an input fed
    with that constant (``fed``): the node reading it runs the kernel the onnx-qdq form runs, whose weight is a
    DequantizeLinear output; reading an initializer it would run a pre-packed kernel whose float32 sums round
    differently and flip codes downstream (19 dB apart on the zoo's LSTM OCR model). ``feed``: only those constants
    are fed (the dequantized ones); any other constant a Where picks (the model's own float weight) stays an
    initializer, pre-packed as in the float model and in a float node of the onnx-qdq form."""
    model = segment.proto
    graph = model.graph
    kept_names = {o.name for o in graph.output} | _subgraph_reads(graph.node)  # names that must still exist
    initializers = {init.name: init for init in graph.initializer}
    renamed: dict[str, str] = {}  # a fixed Where's output -> the value it picks (consumers read that directly)
    fed: dict[str, onnx.TensorProto] = {}  # a fixed Where's output that picks a constant -> that constant
    nodes = []
    for node in graph.node:
        if node.op_type == "Where" and node.input[0] in fixed:
            chosen = renamed.get(node.input[1] if fixed[node.input[0]] else node.input[2])
            chosen = chosen or (node.input[1] if fixed[node.input[0]] else node.input[2])
            if node.output[0] in kept_names:
                nodes.append(onnx.helper.make_node("Identity", [chosen], list(node.output), name=node.name))
            elif chosen in initializers and (feed is None or chosen in feed):
                fed[node.output[0]] = initializers[chosen]
            else:
                renamed[node.output[0]] = chosen
            continue
        if any(name in renamed for name in node.input):
            node = _with_inputs(node, [renamed.get(name, name) for name in node.input])
        nodes.append(node)
    return _pruned(segment, nodes, fixed, fed)


def _pruned(segment: Segment, nodes: list[onnx.NodeProto], dropped: Mapping[str, bool],
            fed: dict[str, onnx.TensorProto]) -> Segment:
    """``nodes`` as a segment with ``segment``'s outputs: only what feeds them, ``dropped`` inputs gone, ``fed``
    values as inputs carrying their arrays."""
    model = segment.proto
    graph = model.graph
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(nodes):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed |= node_reads(node)
    inputs = [i for i in graph.input if i.name in needed and i.name not in dropped]
    inputs += [onnx.helper.make_tensor_value_info(name, tensor.data_type, list(tensor.dims))
               for name, tensor in fed.items() if name in needed]
    baked = onnx.helper.make_graph(list(reversed(kept)), graph.name, inputs, list(graph.output),
                                   [init for init in graph.initializer if init.name in needed])
    proto = onnx.helper.make_model(baked, opset_imports=model.opset_import, ir_version=model.ir_version,
                                   functions=model.functions)
    arrays = {name: onnx.numpy_helper.to_array(tensor) for name, tensor in fed.items() if name in needed}
    return Segment(proto.SerializeToString(deterministic=True), tuple(i.name for i in inputs), segment.outputs,
                   frozenset(needed), arrays)


def narrow(segment: Segment, outputs: Sequence[str], known: Collection[str]) -> Segment:
    """``segment`` computing only ``outputs`` (some of its own): a value in ``known`` (one a run already has, and
    that does not change) is read as an input rather than computed again."""
    graph = segment.proto.graph
    needed, kept = set(outputs), []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed |= {name for name in node_reads(node) if name not in known}
    kept.reverse()
    made = {name for node in kept for name in node.output}
    reads = set().union(*(node_reads(node) for node in kept)) if kept else set()
    initializers = [init for init in graph.initializer if init.name in reads]
    constant = {init.name for init in initializers}
    inputs = sorted(name for name in reads if name not in made and name not in constant)
    infos = {info.name: info for info in (*graph.input, *graph.output)}
    named = [infos.get(name) or onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
             for name in inputs]
    wanted = set(outputs)
    narrowed = onnx.helper.make_graph(kept, graph.name, named, [o for o in graph.output if o.name in wanted],
                                      initializers)
    proto = onnx.helper.make_model(narrowed, opset_imports=segment.proto.opset_import,
                                   ir_version=segment.proto.ir_version, functions=segment.proto.functions)
    return Segment(proto.SerializeToString(deterministic=True), tuple(inputs),
                   tuple(o.name for o in graph.output if o.name in wanted), frozenset(reads),
                   {name: array for name, array in segment.fed.items() if name in inputs})
