"""Names the TFLite lowering shares: tensor dtypes and the NCHW <-> NHWC permutations."""

TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)
INT8, FLOAT = "int8", "float32"
