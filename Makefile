# ecomac: `make` generates, synthesizes and reports the default designs; `make test` runs every test.
# Both build .venv on first use. Icarus Verilog is installed with apt-get when running as root.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ecomac-installed
BUILD  := build
PYTEST_JOBS ?= auto

.PHONY: all env iverilog verilog sim synth test report bench bench-cuda gpu-check fpga prove experiments hwsim clean

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
# then trains on the arithmetic (ALS-POTQ, QAT, ASM, approximate fine-tuning, HADES alphabet-aware fine-tuning of
# mobilenet and resnet): build/experiments/train_*.json;
# then ALWANN: FP32 models from nn train and the multiplier-assignment search (MLP, LeNet, ResNet): build/experiments/alwann_*/;
# first the report's heavy sections (cell-library energy, 64-lane ASM storage tiles): build/experiments/report_sections/;
# last the network energy on the tile accelerators through ZigZag (docs/accelerators.md): build/experiments/accelerators.json,
# and HADES's mobilenet/resnet on the tiles with compact ASM storage: build/experiments/accelerators_hades.json
# ALWANN on ResNet-20/MNIST-5k, reduced to about 30 minutes on a shared core (docs/alwann.md): 4 tiles, 12 multipliers
# spanning the sweep's energies (both kernel paths), a 200-image search split, no tuning comparison, batches of
# 100 images (500 ran out of the 23 GB machine's memory on the test split)
ALWANN_RESNET_MULTS := drum,k=5 bam,vbl=4,hbl=2 drum,k=4 bam,vbl=4,hbl=3 trunc,k=7,correction=0 mitchell,frac_bits=5 \
  bam,vbl=6,hbl=3 trunc,k=8,correction=1 drum,k=3 mitchell,frac_bits=3 bam,vbl=8,hbl=4 trunc,k=9,correction=0
ALWANN_RESNET := --tiles 4 --pop 20 --gens 11 --search-fraction 0.05 --eval-batch 100 --no-sweep --no-tuning-comparison \
  $(ALWANN_RESNET_MULTS:%=--mult approx:mul-%)
# and on MobileNet/MNIST-5k (about 15 minutes on one shared core): the 33 sweep multipliers, 4 tiles, a 400-image search split
ALWANN_MOBILENET := --tiles 4 --pop 20 --gens 10 --search-fraction 0.1
# HADES: the compact-storage (index) tile energy of the trained networks' layers, every alphabet at 8 and 4 bits
HADES_TILE_SPECS := int8 asm,alphabet=1 asm,alphabet=1/3 asm,alphabet=1/3/5/7 asm,alphabet=1,w_bits=4 \
  asm,alphabet=1/3,w_bits=4 asm,alphabet=1/3/5/7,w_bits=4
experiments: env
	$(BIN)/ecomac report --heavy -o $(BUILD)/report
	$(BIN)/ecomac nn experiments -o $(BUILD)/experiments
	$(BIN)/ecomac nn train-experiments -o $(BUILD)/experiments
	$(BIN)/ecomac nn train --arch mlp --data digits --epochs 30 -o $(BUILD)/experiments/mlp_digits.pt
	$(BIN)/ecomac alwann search --model $(BUILD)/experiments/mlp_digits.pt --data digits --objective loss -o $(BUILD)/experiments/alwann_mlp_digits
	$(BIN)/ecomac nn train --arch lenet --data mnist --epochs 10 -o $(BUILD)/experiments/lenet_mnist.pt
	$(BIN)/ecomac alwann search --model $(BUILD)/experiments/lenet_mnist.pt --data mnist --objective loss -o $(BUILD)/experiments/alwann_lenet_mnist
	$(BIN)/ecomac nn train --arch resnet --data mnist --epochs 5 -o $(BUILD)/experiments/resnet_mnist.pt
	$(BIN)/ecomac alwann search --model $(BUILD)/experiments/resnet_mnist.pt --data mnist --objective loss $(ALWANN_RESNET) -o $(BUILD)/experiments/alwann_resnet_mnist
	$(BIN)/ecomac nn train --arch mobilenet --data mnist --epochs 10 -o $(BUILD)/experiments/mobilenet_mnist.pt
	$(BIN)/ecomac alwann search --model $(BUILD)/experiments/mobilenet_mnist.pt --data mnist --objective loss $(ALWANN_MOBILENET) -o $(BUILD)/experiments/alwann_mobilenet_mnist
	$(BIN)/ecomac energy accelerators -o $(BUILD)/experiments/accelerators.json
	$(BIN)/ecomac energy accelerators --net mobilenet:mnist --net resnet:mnist $(HADES_TILE_SPECS:%=--datapath %) --batch 1 -o $(BUILD)/experiments/accelerators_hades.json

# a whole network on the generated hardware (docs/hwsim.md): MLP, LeNet and ResNet trained on digits and LeNet
# on MNIST-5k, run through each datapath's gate netlist (every digits test sample; ResNet and MNIST: 32) with
# zero mismatches or the run fails,
# the MLP on 4 samples through the Verilog (cocotb + Icarus) and on 32 with timed (glitch) energy; one JSON per
# run in build/hwsim/, then a summary
HWSIM_SPECS := int8 mfmac asm,alphabet=1/3 approx:mul-drum,k=4
hwsim: env iverilog
	mkdir -p $(BUILD)/hwsim
	$(BIN)/ecomac nn train --arch mlp --data digits --epochs 30 -o $(BUILD)/hwsim/mlp_digits.pt
	$(BIN)/ecomac nn train --arch lenet --data digits --epochs 30 -o $(BUILD)/hwsim/lenet_digits.pt
	$(BIN)/ecomac nn train --arch resnet --data digits --epochs 5 -o $(BUILD)/hwsim/resnet_digits.pt
	$(BIN)/ecomac nn train --arch lenet --data mnist --epochs 5 -o $(BUILD)/hwsim/lenet_mnist.pt
	set -e; for s in $(HWSIM_SPECS); do n=$$(echo "$$s" | tr '/,:=' '____'); \
	  for m in mlp lenet; do \
	    $(BIN)/ecomac nn hwsim --model $(BUILD)/hwsim/$${m}_digits.pt --data digits --datapath "$$s" --batch 4 \
	      --json > $(BUILD)/hwsim/$${m}_digits_$$n.json; done; \
	  $(BIN)/ecomac nn hwsim --model $(BUILD)/hwsim/resnet_digits.pt --data digits --datapath "$$s" --samples 32 \
	    --json > $(BUILD)/hwsim/resnet_digits_$$n.json; \
	  $(BIN)/ecomac nn hwsim --model $(BUILD)/hwsim/lenet_mnist.pt --data mnist --datapath "$$s" --samples 32 \
	    --json > $(BUILD)/hwsim/lenet_mnist_$$n.json; done
	$(BIN)/ecomac nn hwsim --model $(BUILD)/hwsim/mlp_digits.pt --data digits --datapath int8 \
	  --json > $(BUILD)/hwsim/mlp_digits_int8_batch1.json
	set -e; for s in $(HWSIM_SPECS); do n=$$(echo "$$s" | tr '/,:=' '____'); \
	  $(BIN)/ecomac nn hwsim --model $(BUILD)/hwsim/mlp_digits.pt --data digits --datapath "$$s" --engine rtl \
	    --samples 4 --json > $(BUILD)/hwsim/mlp_digits_$${n}_rtl.json; done
	mkdir -p $(BUILD)/hwsim/timed
	set -e; for s in $(HWSIM_SPECS); do n=$$(echo "$$s" | tr '/,:=' '____'); \
	  $(BIN)/ecomac nn hwsim --model $(BUILD)/hwsim/mlp_digits.pt --data digits --datapath "$$s" --batch 4 \
	    --samples 32 --timed --json > $(BUILD)/hwsim/timed/mlp_digits_$$n.json; done
	$(BIN)/python -m ecomac.cmd_hwsim $(BUILD)/hwsim/*.json

bench: env iverilog
	$(BIN)/python -m ecomac.bench -o $(BUILD)/bench

# the device-aware benches (emulation kernels, training/eval per datapath) on a CUDA GPU
bench-cuda: env
	$(BIN)/python -m ecomac.bench --device cuda -o $(BUILD)/bench

# on a machine with a CUDA GPU: every CPU-vs-CUDA comparison (bit-exact) and the GPU benches, minutes;
# with the machine's own CUDA PyTorch instead of the venv's CPU build: make gpu-check PY=python3
PY ?= $(BIN)/python
gpu-check: $(if $(filter $(BIN)/python,$(PY)),env)
	PYTHONPATH=$(CURDIR) $(PY) -m ecomac.gpu_check -o $(BUILD)/gpu_check

clean:
	rm -rf $(BUILD) sim_build results.xml .pytest_cache
