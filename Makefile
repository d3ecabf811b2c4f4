# SPDX-License-Identifier: Apache-2.0
# nsconv: `make demo` and `make test` set everything up themselves.
PY := .venv/bin/python
NSCONV := .venv/bin/nsconv
export PATH := $(CURDIR)/.venv/bin:$(PATH)
DEMO_OUT := out/demo
DEMO_WAV := tests/data/0072_noisy.wav

.PHONY: setup demo test test-models wheel-check bench fuzz verify-targets fit-report gtcrn-quant clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(NSCONV) export dynamic-nsnet2 -o $(DEMO_OUT) --target cortex-m4
	$(NSCONV) verify $(DEMO_OUT) --frames 300 --exit-schedule random
	$(NSCONV) enhance $(DEMO_OUT) $(DEMO_WAV) $(DEMO_OUT)/enhanced.wav --exit gru2 --engine tflm
	$(NSCONV) run $(DEMO_OUT) $(DEMO_WAV) $(DEMO_OUT)/enhanced-m4.wav --exit final --frames 200
	$(PY) -m nsconv.eval.demo $(DEMO_OUT) tests/data

# on both cores (pytest-xdist): each test module is one unit of work (the board modules one
# per board), long modules first; tests/conftest.py builds the shared conversions once per run
test: setup
	$(PY) -m pytest -q -n auto --dist loadscope --no-loadscope-reorder tests

# the built wheel installed into a fresh venv outside the checkout, then export -> verify ->
# run -> bench from an empty folder (what `pip install -e` hides); CI runs it after make test
wheel-check: setup
	bash scripts/wheel_check.sh

# docs/performance.{json,md} and the README's performance table, all from this one run
BENCH_MODEL := nsnet2-baseline
# The three public nsNet2-family layouts (16 kHz DNS, 257 bins, 48 kHz DNS) from PyTorch and
# Keras, each whole: export, verify on all frames, M4 and M55 in QEMU, enhance (tests/test_byom.py).
test-models: setup
	NSCONV_TEST_MODELS=1 $(PY) -m pytest -q tests/test_byom.py

# and, next to it, issue 11's int4 speed: the FULLY_CONNECTED kernels per MAC, int8 (s8) and
# packed int4 (s4), on every core (scripts/kernel_bench.py), and dynamic-nsnet2 with gru1, gru2
# and fc3 in int4, final exit, on every core (limit on Cortex-M7: 0.70 x TFLM + CMSIS-NN)
BENCH_INT4 := gru1=int4,gru2=int4,fc3=int4
bench: setup
	$(NSCONV) export $(BENCH_MODEL) -o out/bench
	$(NSCONV) bench out/bench --json > out/bench.json
	$(NSCONV) export dynamic-nsnet2 -o out/bench-int4 --weights $(BENCH_INT4)
	$(NSCONV) bench out/bench-int4 --exit final --core cortex-m4 --core cortex-m7 \
	  --core cortex-m33 --core cortex-m55 --json > out/bench-int4.json
	$(PY) scripts/kernel_bench.py out/kernel_bench.json
	$(PY) scripts/perf_table.py out/bench.json --model $(BENCH_MODEL) \
	  --kernels out/kernel_bench.json --int4 out/bench-int4.json --int4-weights $(BENCH_INT4)

# Both built-in models on every core in QEMU against TFLM, 2000 frames, fixed and random exit
# schedules (`nsconv verify --target`); `make test` runs a short form (tests/test_verify_target.py).
# Then GTCRN (one exit) on every core over its >= 2,000 frames of real speech (GTCRN_VERIFY_AUDIO).
GTCRN_ONNX := ../shared/models/gtcrn/gtcrn_simple.onnx
GTCRN_VERIFY_AUDIO = $(wildcard ../shared/audio/dns3/*_noisy.wav) \
  $(wildcard toolchain/nsconv/quant/data/calib/p*.wav)
verify-targets: setup
	@cores=$$($(PY) -c "from nsconv.check.target_verify import cores; print(' '.join(cores()))") \
	  && test -n "$$cores" || exit 1; \
	for model in nsnet2-baseline dynamic-nsnet2; do \
	  $(NSCONV) export $$model -o out/verify-$$model || exit 1; \
	  for schedule in fixed random; do \
	    $(NSCONV) verify out/verify-$$model $$(for c in $$cores; do echo --target $$c; done) \
	      --frames 2000 --exit-schedule $$schedule --json > out/verify-$$model-$$schedule.json \
	      || { cat out/verify-$$model-$$schedule.json; exit 1; }; \
	    echo "$$model $$schedule on $$cores: bit-exact (out/verify-$$model-$$schedule.json)"; \
	  done; \
	done; \
	$(NSCONV) export $(GTCRN_ONNX) -o out/verify-gtcrn > /dev/null || exit 1; \
	$(NSCONV) verify out/verify-gtcrn $$(for c in $$cores; do echo --target $$c; done) \
	  $(foreach a,$(GTCRN_VERIFY_AUDIO),--audio $(a)) --json > out/verify-gtcrn.json \
	  || { cat out/verify-gtcrn.json; exit 1; }; \
	echo "gtcrn on $$cores: bit-exact, masks and states (out/verify-gtcrn.json)"

# Issue 11's demonstrations: `nsconv fit dynamic-nsnet2` on every part, the stm32h743 and
# nrf5340 exports (verify, verify --target, run vs the host build, evaluate vs all-int8);
# writes docs/fit.md, docs/fit.json and the README's fit blocks (scripts/fit_report.py).
fit-report: setup
	$(PY) scripts/fit_report.py

fuzz: setup
	$(PY) scripts/fuzz.py --inputs 10000
	$(NSCONV) export dynamic-nsnet2 -o out/soak
	$(PY) scripts/soak.py out/soak --frames 360000 --json docs/SOAK_REPORT.json

# Round-to-nearest vs GPTQ int4 on gru1, gru2 and fc3 of dynamic-nsnet2, every exit in TFLM on
# tests/data: mask RMS difference from all-int8, PESQ-wb/STOI/SI-SDR per clip
.PHONY: int4-rounding
int4-rounding: setup
	$(NSCONV) convert dynamic-nsnet2 -o out/int4-int8
	$(PY) scripts/int4_rounding.py --int8 out/int4-int8 --json docs/int4_rounding.json \
	  --markdown docs/int4_rounding.md
# GTCRN's quantized core (docs/gtcrn.md): the deployable mixed core out/gtcrn/core_mixed.tflite,
# the per-stage int8/int16 sensitivity and the DNS3 quality of mixed/int8/16x8 cores in TFLM
# (needs ../shared/models/gtcrn and ../shared/audio/dns3; GTCRN_SHARED overrides)
GTCRN_SHARED ?= ../shared
gtcrn-quant: setup
	$(PY) scripts/gtcrn_core.py --shared $(GTCRN_SHARED) --mode mixed
	$(PY) scripts/gtcrn_mix.py --shared $(GTCRN_SHARED) --json docs/gtcrn_mix.json --doc docs/gtcrn.md
	for mode in mixed int8 16x8; do \
	  $(PY) scripts/gtcrn_quant.py --shared $(GTCRN_SHARED) --mode $$mode || exit 1; \
	done

clean:
	rm -rf out build .pytest_cache

.PHONY: test-gtcrn verify-gtcrn
# test-gtcrn: the layout pass and GTCRN compiler tests alone (they are in make test too).
# verify-gtcrn: export ../shared/models/gtcrn/gtcrn_simple.onnx (calibration, conversion, C),
# then `nsconv verify` over >= 2,000 frames of real speech (DNS3 noisy clips and the package's
# other calibration clips), and the figures of docs/gtcrn-compiler.md from both.
test-gtcrn: setup
	$(PY) -m pytest -q tests/test_layout.py tests/test_gtcrn_compile.py

verify-gtcrn: setup
	$(NSCONV) export $(GTCRN_ONNX) -o out/gtcrn-export --json > out/gtcrn-export.json
	$(NSCONV) verify out/gtcrn-export --json $(foreach a,$(GTCRN_VERIFY_AUDIO),--audio $(a)) \
	  > out/gtcrn-verify.json \
	  || { cat out/gtcrn-verify.json; exit 1; }
	@echo "GTCRN host C vs TFLM: bit-exact (out/gtcrn-verify.json)"
	$(PY) scripts/gtcrn_compile_report.py out/gtcrn-export.json out/gtcrn-verify.json

.PHONY: gtcrn-target gtcrn-bench
# gtcrn-target: GTCRN's firmware on Cortex-M4, M7 and M55 in QEMU, each core's wav equal to the
# host build's byte for byte (tests/test_gtcrn_target.py; make test runs the M4 case only), and
# `nsconv verify --target` on the three cores over >= 2,000 frames of real speech, masks and
# states against TFLM, plus a corrupted ARM weight found and named
# (tests/test_gtcrn_verify_target.py; make test runs an M4 short form).
# gtcrn-bench: export GTCRN for every core, `nsconv bench` (instructions per 16 ms hop, by op,
# RAM, flash) and `nsconv evaluate` (quantized host build vs the float ONNX model in
# onnxruntime on the DNS3 pairs) into docs/gtcrn_bench.json and docs/gtcrn_eval.json.
GTCRN_DNS3 ?= $(GTCRN_SHARED)/audio/dns3
gtcrn-target: setup
	NSCONV_GTCRN_ALL_CORES=1 $(PY) -m pytest -q -s tests/test_gtcrn_target.py \
	  tests/test_gtcrn_verify_target.py

gtcrn-bench: setup
	$(NSCONV) export $(GTCRN_ONNX) -o out/gtcrn-fw --target cortex-m4 > /dev/null
	$(NSCONV) bench out/gtcrn-fw --core cortex-m4 --core cortex-m7 --core cortex-m55 --json \
	  > docs/gtcrn_bench.json
	$(NSCONV) evaluate out/gtcrn-fw --onnx $(GTCRN_ONNX) --audio $(GTCRN_DNS3) --json \
	  > docs/gtcrn_eval.json
	$(NSCONV) evaluate dynamic-nsnet2 --engine tflm --audio $(GTCRN_DNS3) --no-dnsmos --json \
	  > docs/gtcrn_nsnet2_dns3.json
	$(PY) scripts/gtcrn_target_report.py docs/gtcrn_bench.json docs/gtcrn_eval.json \
	  --nsnet2 docs/gtcrn_nsnet2_dns3.json
