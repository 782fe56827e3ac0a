"""From a canonical graph and calibration stats to a quantization plan (grids, tables, fallbacks)."""

from edgeact.planning.plan import QuantPlan, make_plan
from edgeact.planning.registry import OP_QUANTIZERS, OpQuantizer, Role, activation_of

__all__ = ["OP_QUANTIZERS", "OpQuantizer", "QuantPlan", "Role", "activation_of", "make_plan"]
