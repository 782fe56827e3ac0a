"""From a canonical graph and calibration stats to a quantization plan for a target: every grid, table, constant's
codes, fallback, and each activation's form (builtin / table / float) per output format."""

from edgeact.planning.plan import PlanOptions, QuantPlan, make_plan
from edgeact.planning.registry import OP_QUANTIZERS, OpQuantizer, Role, activation_of
from edgeact.planning.target_forms import ActivationForm

__all__ = ["OP_QUANTIZERS", "ActivationForm", "OpQuantizer", "PlanOptions", "QuantPlan", "Role", "activation_of",
           "make_plan"]
