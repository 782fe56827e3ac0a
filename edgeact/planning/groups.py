"""Tensor groups of a plan: the planned values that share one grid, with the constants (weights, biases, operands)
of the nodes writing them. A group is the unit a sensitivity trial switches and a budget promotes."""

from __future__ import annotations

from dataclasses import dataclass

from edgeact.graph.view import GraphView
from edgeact.planning.plan import QuantPlan

QDQ_FORM = "onnx-qdq"  # the form whose arithmetic the trials simulate (constants stored for it)


@dataclass(frozen=True)
class TensorGroup:
    """One grid's values (``name``: the group's root value), the nodes writing them, and the indices in
    ``plan.constants`` of the constants those nodes (or the node a folded Relu/Clip continues) read."""

    name: str
    values: tuple[str, ...]
    producers: tuple[str, ...]
    constants: tuple[int, ...]


def _group_of_node(node: str, view: GraphView, root_of: dict[str, str]) -> str | None:
    """The group a node's constants belong to: that of its first planned output; for a node whose output is not
    planned (a Conv whose Relu folds into its grid), that of the single consumer chain it feeds."""
    current = next(n for n in view.nodes if n.name == node)
    seen = set()
    while current.name not in seen:
        seen.add(current.name)
        outputs = [value for value in current.outputs if value]
        planned = [value for value in outputs if value in root_of]
        if planned:
            return root_of[planned[0]]
        following = view.consumers(outputs[0]) if len(outputs) == 1 else []
        if len(following) != 1:
            return None
        current = following[0]
    return None


def tensor_groups(view: GraphView, plan: QuantPlan) -> list[TensorGroup]:
    """Every group of ``plan`` in graph order; constants whose node feeds no planned value form a group of their
    own, named after the node."""
    order = {name: index for index, name in enumerate(view.values)}
    root_of = {value: plan.shares_grid_with.get(value, value) for value in plan.grids}
    members: dict[str, list[str]] = {}
    for value in sorted(plan.grids, key=lambda name: order.get(name, len(order))):
        members.setdefault(root_of[value], []).append(value)
    constants: dict[str, list[int]] = {}
    for index, constant in enumerate(plan.constants):
        if QDQ_FORM in constant.formats:
            group = _group_of_node(constant.node, view, root_of) or f"constants of {constant.node}"
            constants.setdefault(group, []).append(index)
    names = list(members) + [name for name in constants if name not in members]
    return [TensorGroup(name, tuple(members.get(name, ())),
                        tuple(dict.fromkeys(p.name for v in members.get(name, ()) if (p := view.producer(v)))),
                        tuple(constants.get(name, ())))
            for name in names]
