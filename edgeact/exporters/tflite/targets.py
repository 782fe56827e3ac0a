"""What each built-in TFLite target runs, as data: which int8 activation builtins compute exactly edgeact's table
(every other activation becomes a CAST -> ADD -> GATHER table), and which float builtins it has.

Facts from tests/test_litert_tables.py and tests/test_tflm_hazards.py. (Device profiles will take these over.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeact.errors import UsageError


@dataclass(frozen=True)
class BuiltinTable:
    op: str  # TFLite builtin
    conventions: tuple[str, ...]  # every table convention the target may run it with (kernels, delegates)
    options: tuple[tuple[str, object], ...] = ()
    output_grid: tuple[float, int] | None = None  # the only output grid the kernel accepts


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    int8_builtins: dict[str, BuiltinTable] = field(default_factory=dict)  # activation name -> builtin
    missing_float_ops: frozenset[str] = frozenset()


TARGETS: dict[str, Target] = {
    "litert": Target(
        "litert",
        "LiteRT (XNNPACK delegate by default, builtin and reference kernels)",
        {
            # XNNPACK takes int8 TANH/LOGISTIC and builds its own table; the builtin kernels build LiteRT's.
            "tanh": BuiltinTable("TANH", ("litert", "xnnpack")),
            "sigmoid": BuiltinTable("LOGISTIC", ("litert", "xnnpack"), output_grid=(1 / 256, -128)),
            "gelu": BuiltinTable("GELU", ("litert",), (("approximate", False),)),  # XNNPACK does not take GELU
            "gelu_tanh": BuiltinTable("GELU", ("litert",), (("approximate", True),)),
        },
    ),
    "tflm": Target(
        "tflm",
        "TFLite Micro reference kernels (TANH/LOGISTIC in fixed point at fixed grids, no GELU)",
        {},
        frozenset({"GELU"}),
    ),
}


def target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise UsageError(f"unknown TFLite target {name!r}; known: {', '.join(TARGETS)}") from None
