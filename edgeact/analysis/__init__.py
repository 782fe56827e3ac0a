"""Sensitivity analysis: how much each quantized tensor group costs (only it int8, the rest float) and how much
going back to float recovers (everything int8 but it), measured on the model's outputs with trials that rerun only
the part of the graph downstream of the group (docs/sensitivity.md)."""
