"""Accuracy of the digits examples: edgeact's int8 forms beside onnxruntime.quantization on the same data.

    make bench      # or: .venv/bin/python -m bench.digits_accuracy
"""

from examples.digits_eval import main

if __name__ == "__main__":
    main([])
