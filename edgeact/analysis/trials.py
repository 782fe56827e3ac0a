"""Run a switchable model's segments: base passes (every segment with every group float, or every group int8; a
cache of the values later segments read), then trials that flip one group and rerun, from the first segment that
group acts in, only what the flip reaches: a later segment none of whose outputs it reaches is skipped, one some of
whose outputs it reaches runs cut down to those, every other value read from the cache. Every segment a trial runs
is baked (its switches fixed: float weights stay constants onnxruntime pre-packs, dequantized ones are fed); the
segments the flipped group acts in are baked for that trial. A trial's batches run side by side, one per core."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from edgeact.exporters.onnx.switchable import SwitchableModel
from edgeact.graph.segments import Segment, bake, narrow, node_reads
from edgeact.runtimes.onnxruntime import THREADS, ort_session, run_ort

Feeds = dict[str, np.ndarray]
NARROWED_KEPT = 48  # base segments cut down to some of their outputs, kept for later trials (sessions hold memory)


def _session(segment: Segment, what: str):  # type: ignore[no-untyped-def]
    # many sessions run in turn on the same cores; each run takes one core, and batches run side by side: the
    # segments are small and mostly thread-pool overhead at two threads a run
    return ort_session(segment.payload, what, spinning=False, threads=1)


class TrialRunner:
    """Sessions for each segment of a switchable model baked all float and all int8, on fixed ``batches`` of graph
    inputs; a trial bakes the segments its group acts in with that group flipped."""

    def __init__(self, model: SwitchableModel, segments: Sequence[Segment], batches: Sequence[Feeds],
                 outputs: Sequence[str]) -> None:
        self.switches, self.dequantized = model.switches, model.dequantized
        self.segments = list(segments)
        self.baked = {on: [self._bake(s, self._fixed(on)) for s in self.segments] for on in (False, True)}
        self.sessions = {on: [_session(s, f"sensitivity segment {i}") for i, s in enumerate(self.baked[on])]
                         for on in (False, True)}
        self.batches = list(batches)
        self.outputs = tuple(outputs)
        self.trials = 0
        self.shortcuts = {"skipped": 0, "narrowed": 0}  # segments trials left out / ran cut down to what they reach
        self._readers: dict[str, list] = {}  # value -> the switchable model's nodes reading it
        for segment in self.segments:
            for node in segment.proto.graph.node:
                for name in node_reads(node):
                    self._readers.setdefault(name, []).append(node)
        self._reached: dict[int, frozenset[str]] = {}
        self._narrow_cache: dict[tuple, tuple[Segment, object]] = {}

    def _bake(self, segment: Segment, fixed: dict[str, bool]) -> Segment:
        return bake(segment, fixed, self.dequantized)

    def _fixed(self, on: bool, flipped: int | None = None) -> dict[str, bool]:
        return {name: on != (index == flipped) for index, name in enumerate(self.switches)}

    def acts_in(self, group: int) -> list[int]:
        """The segments group ``group``'s switch acts in."""
        return [i for i, s in enumerate(self.segments) if self.switches[group] in s.reads]

    @staticmethod
    def _run(segment: Segment, session, values: Feeds) -> None:  # type: ignore[no-untyped-def]
        feeds = {name: segment.fed[name] if name in segment.fed else values[name] for name in segment.inputs}
        values.update(run_ort(session, feeds, list(segment.outputs)))

    @classmethod
    def _chain(cls, runs: Sequence[tuple[Segment, object]], starts: Sequence[Feeds]) -> list[Feeds]:
        """Each of ``starts`` (a batch's known values) through ``runs`` (segments and their sessions, in order):
        every value known after them, per batch. Batches run side by side, one per core."""
        def through(start: Feeds) -> Feeds:
            values = dict(start)
            for segment, session in runs:
                cls._run(segment, session, values)
            return values

        if len(starts) < 2:
            return [through(start) for start in starts]
        with ThreadPoolExecutor(min(THREADS, len(starts))) as pool:
            return list(pool.map(through, starts))

    def base(self, on: bool) -> list[Feeds]:
        """Every batch through every segment, every group int8 (``on``) or float: the values segments pass on."""
        return self._chain(list(zip(self.baked[on], self.sessions[on], strict=True)), self.batches)

    def outputs_of(self, cache: Sequence[Feeds]) -> list[Feeds]:
        return [{name: values[name] for name in self.outputs} for values in cache]

    def trial(self, cache: Sequence[Feeds], base_on: bool, group: int, start: int | None = None) -> list[Feeds]:
        """Graph outputs per batch with ``group`` flipped against the base pass ``cache`` (all int8 when
        ``base_on``, else all float): segments before the first one the group acts in come from the cache, and
        of the later ones only what the flip reaches runs (the rest is read from the cache). ``start``: run every
        segment whole from that one on instead (a check of the shortcut)."""
        self.trials += 1
        acting = self.acts_in(group)
        if not acting:
            return self.outputs_of(cache)
        fixed = self._fixed(base_on, group)
        flipped = {i: self._bake(self.segments[i], fixed) for i in acting}
        if start is not None:
            runs = [(flipped[i], _session(flipped[i], f"sensitivity segment {i}")) if i in flipped
                    else (self.baked[base_on][i], self.sessions[base_on][i]) for i in range(start, len(self.segments))]
            return self._outputs(runs, cache)
        return self._outputs(self._reaching(flipped, base_on, self.reached(group), frozenset(cache[0])), cache)

    def _reaching(self, flipped: dict[int, Segment], base_on: bool, reached: frozenset[str],
                  cached: frozenset[str]) -> list[tuple[Segment, object]]:
        """The runs of a trial from its first ``flipped`` segment on: each segment cut down to the outputs the flip
        ``reached`` (skipped when it reaches none), reading the unchanged ``cached`` values."""
        known, runs = cached - reached, []
        for i in range(min(flipped), len(self.segments)):
            segment = flipped.get(i, self.baked[base_on][i])
            outputs = tuple(name for name in segment.outputs if name in reached)
            self.shortcuts["skipped"] += not outputs
            self.shortcuts["narrowed"] += 0 < len(outputs) < len(segment.outputs)
            if not outputs:
                continue
            if i in flipped:
                whole = len(outputs) == len(segment.outputs)
                segment = segment if whole else narrow(segment, outputs, known)
                runs.append((segment, _session(segment, f"sensitivity segment {i}")))
            else:
                runs.append(self._narrowed(base_on, i, outputs, known))
        return runs

    def reached(self, group: int) -> frozenset[str]:
        """Every value group ``group``'s switch reaches (through the switchable model's nodes)."""
        if group not in self._reached:
            switch, seen, frontier = self.switches[group], set(), [self.switches[group]]
            while frontier:
                for node in self._readers.get(frontier.pop(), ()):
                    fresh = [name for name in node.output if name and name not in seen]
                    seen.update(fresh)
                    frontier.extend(fresh)
            self._reached[group] = frozenset(seen | {switch})
        return self._reached[group]

    def _narrowed(self, on: bool, index: int, outputs: tuple[str, ...], known: frozenset[str]):  # type: ignore[no-untyped-def]
        """The base segment ``index`` (all int8 or all float) computing only ``outputs``, with its session; kept
        for the next trials that need the same outputs."""
        segment = self.baked[on][index]
        if len(outputs) == len(segment.outputs):
            return segment, self.sessions[on][index]
        key = (on, index, outputs)
        if key not in self._narrow_cache:
            if len(self._narrow_cache) >= NARROWED_KEPT:
                self._narrow_cache.pop(next(iter(self._narrow_cache)))
            narrowed = narrow(segment, outputs, known)
            self._narrow_cache[key] = (narrowed, _session(narrowed, f"sensitivity segment {index}"))
        return self._narrow_cache[key]

    def _outputs(self, runs: list[tuple[Segment, object]], starts: Sequence[Feeds]) -> list[Feeds]:
        """Graph outputs of ``runs`` (segments and their sessions, in order) from each of ``starts``."""
        return self.outputs_of(self._chain(runs, starts))

    def configured(self, floats: Collection[int]) -> list[Feeds]:
        """Graph outputs with every group int8 except ``floats``: each segment baked for that mix, one pass."""
        fixed = {name: index not in floats for index, name in enumerate(self.switches)}
        runs = [(baked, _session(baked, f"sensitivity segment {i}"))
                for i, baked in enumerate(self._bake(s, fixed) for s in self.segments)]
        return self._outputs(runs, self.batches)

    def switchable_run(self, on: frozenset[int]) -> list[Feeds]:
        """Graph outputs with exactly the groups ``on`` int8, through the unbaked switchable segments (slow: the
        reference the trials are checked against)."""
        runs = [(s, _session(s, f"sensitivity segment {i}")) for i, s in enumerate(self.segments)]
        switches = {name: np.asarray(index in on) for index, name in enumerate(self.switches)}
        return self._outputs(runs, [{**batch, **switches} for batch in self.batches])
