"""TFLite ground shared by the exporter, the reader, the runtimes and the profiler: the lowered-graph types
(:mod:`edgeact.tflite.graph`) and the flatbuffer schema access (:mod:`edgeact.tflite.schema`, the only module that
imports the ``tflite`` schema package). It imports none of those packages, so none of them imports another to
reach it."""
