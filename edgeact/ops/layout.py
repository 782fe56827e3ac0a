"""Names the TFLite lowering shares: tensor dtypes and the NCHW <-> NHWC permutations."""

TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)
INT8, INT16, FLOAT = "int8", "int16", "float32"
QUANTIZED = (INT8, INT16)  # a lowering's dtype when the plan quantized its node: int8, or 16x8 (int16 activations)
WIDENING = 128  # an int8 value read by a 16x8 op: int16 codes (q - zp) * 128 on scale s / 128, zero point 0 (exact)
