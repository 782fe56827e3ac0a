# Two commands from a fresh clone: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EDGEACT := $(VENV)/bin/edgeact
STAMP := $(VENV)/.edgeact-installed
DEMO_OUT ?= out/demo

.PHONY: demo test install bench zoo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,torch]'
	@touch $(STAMP)

demo: $(STAMP)
	@mkdir -p $(DEMO_OUT)
	$(EDGEACT) quantize examples/digits/transformer_gelu.onnx --calib examples/digits/transformer_gelu.calib.npz \
		--format onnx-qdq,onnx-table,tflite -o $(DEMO_OUT)/digits --plots
	$(PY) -m examples.digits_demo $(DEMO_OUT)/digits
	@echo
	$(EDGEACT) profile-device $(DEMO_OUT)/digits/transformer_gelu.int8.tflite --device litert-reference \
		--baseline examples/digits/transformer_gelu.onnx --data examples/digits/transformer_gelu.eval.npz \
		--per-layer --json $(DEMO_OUT)/digits/profile.json --html $(DEMO_OUT)/digits/profile.html
	@echo
	$(PY) -m examples.digits_eval
	@echo
	$(PY) -m examples.make_onnx_examples $(DEMO_OUT)/models
	$(EDGEACT) quantize $(DEMO_OUT)/models/attention_gelu.onnx --calib $(DEMO_OUT)/models/attention_gelu.calib.npz \
		--format onnx-qdq,tflite --target tflm -o $(DEMO_OUT)/attention
	@echo
	$(PY) -m bench.quantize_vs_ort
	@echo
	$(EDGEACT) lut tanh --in-scale 0.03125 --in-zero-point 0 --out-scale 0.0078125 --out-zero-point 0 \
		--plot $(DEMO_OUT)/tanh_int8.png
	@echo
	$(PY) examples/tflm_tanh_hazard.py

test: $(STAMP)
	$(PY) -m ruff check edgeact tests examples bench
	$(PY) -m pytest -q
	$(PY) -m examples.gate_examples

bench: $(STAMP)
	$(PY) -m bench.compare
	$(PY) -m bench.quantize_vs_ort
	$(PY) -m bench.calibration_memory
	$(PY) -m bench.tflite_latency
	$(PY) -m bench.digits_accuracy
	$(PY) -m bench.sensitivity_speed
	$(PY) bench/table_build_speed.py

zoo: $(STAMP)
	$(PY) -m bench.zoo

clean:
	rm -rf out .pytest_cache .hypothesis
