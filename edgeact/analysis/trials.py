"""Run a switchable model's segments: base passes (every segment with every group float, or every group int8; a
cache of the values later segments read), then trials that flip one group and rerun only the segments from the
first one that group acts in. Every segment a trial runs is baked (its switches fixed: ordinary constant weights
onnxruntime pre-packs); the segments the flipped group acts in are baked for that trial."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from edgeact.exporters.onnx.switchable import SwitchableModel
from edgeact.graph.segments import Segment, bake
from edgeact.runtimes.onnxruntime import ort_session, run_ort

Feeds = dict[str, np.ndarray]


def _session(segment: Segment, what: str):  # type: ignore[no-untyped-def]
    return ort_session(segment.payload, what, spinning=False)  # many sessions run in turn on the same cores


class TrialRunner:
    """Sessions for each segment of a switchable model baked all float and all int8, on fixed ``batches`` of graph
    inputs; a trial bakes the segments its group acts in with that group flipped."""

    def __init__(self, model: SwitchableModel, segments: Sequence[Segment], batches: Sequence[Feeds],
                 outputs: Sequence[str]) -> None:
        self.switches = model.switches
        self.segments = list(segments)
        self.baked = {on: [bake(s, self._fixed(on)) for s in self.segments] for on in (False, True)}
        self.sessions = {on: [_session(s, f"sensitivity segment {i}") for i, s in enumerate(self.baked[on])]
                         for on in (False, True)}
        self.batches = list(batches)
        self.outputs = tuple(outputs)
        self.trials = 0

    def _fixed(self, on: bool, flipped: int | None = None) -> dict[str, bool]:
        return {name: on != (index == flipped) for index, name in enumerate(self.switches)}

    def acts_in(self, group: int) -> list[int]:
        """The segments group ``group``'s switch acts in."""
        return [i for i, s in enumerate(self.segments) if self.switches[group] in s.reads]

    @staticmethod
    def _run(segment: Segment, session, values: Feeds) -> None:  # type: ignore[no-untyped-def]
        feeds = {name: segment.fed[name] if name in segment.fed else values[name] for name in segment.inputs}
        values.update(run_ort(session, feeds, list(segment.outputs)))

    def base(self, on: bool) -> list[Feeds]:
        """Every batch through every segment, every group int8 (``on``) or float: the values segments pass on."""
        cache = []
        for batch in self.batches:
            values = dict(batch)
            for segment, session in zip(self.baked[on], self.sessions[on], strict=True):
                self._run(segment, session, values)
            cache.append(values)
        return cache

    def outputs_of(self, cache: Sequence[Feeds]) -> list[Feeds]:
        return [{name: values[name] for name in self.outputs} for values in cache]

    def trial(self, cache: Sequence[Feeds], base_on: bool, group: int, start: int | None = None) -> list[Feeds]:
        """Graph outputs per batch with ``group`` flipped against the base pass ``cache`` (all int8 when
        ``base_on``, else all float): segments before the first one the group acts in (or before ``start``) come
        from the cache."""
        self.trials += 1
        acting = self.acts_in(group)
        if not acting:
            return self.outputs_of(cache)
        fixed = self._fixed(base_on, group)
        flipped = {i: bake(self.segments[i], fixed) for i in acting}
        first = acting[0] if start is None else min(start, acting[0])
        runs = [(flipped[i], _session(flipped[i], f"sensitivity segment {i}")) if i in flipped
                else (self.baked[base_on][i], self.sessions[base_on][i]) for i in range(first, len(self.segments))]
        return self._outputs(runs, cache)

    def _outputs(self, runs: list[tuple[Segment, object]], starts: Sequence[Feeds]) -> list[Feeds]:
        """Graph outputs of ``runs`` (segments and their sessions, in order) from each of ``starts``."""
        results = []
        for start in starts:
            values = dict(start)
            for segment, session in runs:
                self._run(segment, session, values)
            results.append({name: values[name] for name in self.outputs})
        return results

    def configured(self, floats: Collection[int]) -> list[Feeds]:
        """Graph outputs with every group int8 except ``floats``: each segment baked for that mix, one pass."""
        fixed = {name: index not in floats for index, name in enumerate(self.switches)}
        runs = [(baked, _session(baked, f"sensitivity segment {i}"))
                for i, baked in enumerate(bake(s, fixed) for s in self.segments)]
        return self._outputs(runs, self.batches)

    def switchable_run(self, on: frozenset[int]) -> list[Feeds]:
        """Graph outputs with exactly the groups ``on`` int8, through the unbaked switchable segments (slow: the
        reference the trials are checked against)."""
        runs = [(s, _session(s, f"sensitivity segment {i}")) for i, s in enumerate(self.segments)]
        switches = {name: np.asarray(index in on) for index, name in enumerate(self.switches)}
        return self._outputs(runs, [{**batch, **switches} for batch in self.batches])
