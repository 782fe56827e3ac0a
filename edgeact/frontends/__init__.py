"""Front doors other than ONNX files: PyTorch modules, TorchScript and ExportedProgram files (exported to ONNX)."""
