"""One spec per op: each module of this package declares, for its ONNX op family, the quantizer roles, the TFLite
lowering, the TFLite builtins it emits (options table and emulator kernel). :mod:`edgeact.ops.table` collects them;
the planner's registry, the TFLite lowering, the flatbuffer writer and the emulator read that table."""
