"""The ONNX domain of edgeact's own fused ops (a module with no imports, so every layer can name it)."""

EDGEACT_DOMAIN = "ai.edgeact"
