# Two commands from a fresh clone: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EDGEACT := $(VENV)/bin/edgeact
STAMP := $(VENV)/.edgeact-installed
DEMO_OUT ?= out/demo

.PHONY: demo test install bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,torch]'
	@touch $(STAMP)

demo: $(STAMP)
	@mkdir -p $(DEMO_OUT)
	$(PY) -m examples.make_onnx_examples $(DEMO_OUT)/models
	@echo
	$(EDGEACT) quantize $(DEMO_OUT)/models/attention_gelu.onnx --calib $(DEMO_OUT)/models/attention_gelu.calib.npz \
		-o $(DEMO_OUT) --plots
	@echo
	$(EDGEACT) quantize $(DEMO_OUT)/models/detector_head.onnx --calib $(DEMO_OUT)/models/detector_head.calib.npz \
		-o $(DEMO_OUT)
	@echo
	$(EDGEACT) quantize $(DEMO_OUT)/models/attention_gelu.onnx --calib $(DEMO_OUT)/models/attention_gelu.calib.npz \
		--format tflite --target tflm -o $(DEMO_OUT)/tflm
	@echo
	$(PY) -m bench.quantize_vs_ort
	@echo
	$(EDGEACT) lut tanh --in-scale 0.03125 --in-zero-point 0 --out-scale 0.0078125 --out-zero-point 0 \
		--plot $(DEMO_OUT)/tanh_int8.png
	@echo
	$(EDGEACT) lut gelu --in-scale 0.04 --in-zero-point -40 --out-scale auto --plot $(DEMO_OUT)/gelu_int8.png
	@echo
	$(EDGEACT) lut tanh --bits 16 --in-scale 0.00012207 --in-zero-point 0 --out-scale auto \
		--plot $(DEMO_OUT)/tanh_int16.png
	@echo
	$(PY) examples/tflm_tanh_hazard.py

test: $(STAMP)
	$(PY) -m ruff check edgeact tests examples bench
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench.quantize_vs_ort
	$(PY) -m bench.calibration_memory
	$(PY) -m bench.tflite_latency
	$(PY) bench/table_build_speed.py

clean:
	rm -rf out .pytest_cache .hypothesis
