# ecomac: `make` generates, synthesizes and reports the default designs; `make test` runs every test.
# Both build .venv on first use. Icarus Verilog is installed with apt-get when running as root.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ecomac-installed
BUILD  := build
PYTEST_JOBS ?= auto

.PHONY: all env iverilog verilog sim synth test report bench fpga prove experiments clean

all: report

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

env: $(STAMP)

iverilog:
	@command -v iverilog >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Icarus Verilog (apt-get install iverilog)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog) >/dev/null || exit 1; \
	  else \
	    echo "ecomac: Icarus Verilog (iverilog) is missing: install it with 'sudo apt-get install iverilog' or your OS's package manager"; exit 1; \
	  fi; }

verilog: env
	$(BIN)/ecomac verilog --all -o $(BUILD)/verilog

synth: env
	$(BIN)/ecomac synth --all -o $(BUILD)/synth

sim: env iverilog
	$(BIN)/python -m pytest -m sim -n $(PYTEST_JOBS) cocotb_tests

test: env iverilog
	$(BIN)/python -m pytest -n $(PYTEST_JOBS)

report: verilog env
	$(BIN)/ecomac report -o $(BUILD)/report

fpga: env
	$(BIN)/ecomac fpga --all -o $(BUILD)/fpga

prove: env
	$(BIN)/ecomac prove --all -o $(BUILD)/prove

# trains the shipped models (FP32, 3 seeds) and evaluates every datapath: build/experiments/nn_eval_*.json;
# then trains on the arithmetic (ALS-POTQ, QAT, ASM, approximate fine-tuning): build/experiments/train_*.json;
# then ALWANN: FP32 models from nn train and the multiplier-assignment search: build/experiments/alwann_*/;
# first the report's heavy sections (cell-library energy, 64-lane ASM storage tiles): build/experiments/report_sections/;
# last the network energy on the tile accelerators through ZigZag (docs/accelerators.md): build/experiments/accelerators.json
experiments: env
	$(BIN)/ecomac report --heavy -o $(BUILD)/report
	$(BIN)/ecomac nn experiments -o $(BUILD)/experiments
	$(BIN)/ecomac nn train-experiments -o $(BUILD)/experiments
	$(BIN)/ecomac nn train --arch mlp --data digits --epochs 30 -o $(BUILD)/experiments/mlp_digits.pt
	$(BIN)/ecomac alwann search --model $(BUILD)/experiments/mlp_digits.pt --data digits --objective loss -o $(BUILD)/experiments/alwann_mlp_digits
	$(BIN)/ecomac nn train --arch lenet --data mnist --epochs 10 -o $(BUILD)/experiments/lenet_mnist.pt
	$(BIN)/ecomac alwann search --model $(BUILD)/experiments/lenet_mnist.pt --data mnist --objective loss -o $(BUILD)/experiments/alwann_lenet_mnist
	$(BIN)/ecomac energy accelerators -o $(BUILD)/experiments/accelerators.json

bench: env iverilog
	$(BIN)/python -m ecomac.bench -o $(BUILD)/bench

clean:
	rm -rf $(BUILD) sim_build results.xml .pytest_cache
