# SPDX-License-Identifier: Apache-2.0
# nsconv: `make demo` and `make test` set everything up themselves.
PY := .venv/bin/python
NSCONV := .venv/bin/nsconv
export PATH := $(CURDIR)/.venv/bin:$(PATH)
DEMO_OUT := out/demo
DEMO_WAV := tests/data/0072_noisy.wav

.PHONY: setup demo test test-models bench fuzz clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(NSCONV) export dynamic-nsnet2 -o $(DEMO_OUT) --target cortex-m4
	$(NSCONV) verify $(DEMO_OUT) --frames 300 --exit-schedule random
	$(NSCONV) enhance $(DEMO_OUT) $(DEMO_WAV) $(DEMO_OUT)/enhanced.wav --exit gru2 --engine tflm
	$(NSCONV) run $(DEMO_OUT) $(DEMO_WAV) $(DEMO_OUT)/enhanced-m4.wav --exit final --frames 200
	$(PY) -m nsconv.eval.demo $(DEMO_OUT) tests/data

test: setup
	$(PY) -m pytest -q tests

# The three public nsNet2-family layouts (16 kHz DNS, 257 bins, 48 kHz DNS) from PyTorch and
# Keras, each whole: export, verify on all frames, M4 and M55 in QEMU, enhance (tests/test_byom.py).
test-models: setup
	NSCONV_TEST_MODELS=1 $(PY) -m pytest -q tests/test_byom.py

bench: setup
	$(NSCONV) export nsnet2-baseline -o out/bench-baseline
	$(NSCONV) bench out/bench-baseline --json > out/bench-baseline.json
	@cat out/bench-baseline.json

fuzz: setup
	$(PY) scripts/fuzz.py --inputs 10000
	$(NSCONV) export dynamic-nsnet2 -o out/soak
	$(PY) scripts/soak.py out/soak --frames 360000 --json docs/SOAK_REPORT.json

clean:
	rm -rf out build .pytest_cache
