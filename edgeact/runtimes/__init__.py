"""Runtimes edgeact runs models on: LiteRT (XNNPACK, builtin, reference kernels) and TFLite Micro."""
