"""The network level: networks run and trained on ecomac's datapaths (golden -> rtl -> synth ->
net -> ecomac: nothing here imports the CLI).

datapath.py  resolve a datapath spec (golden/datapath.py) incl. `lut:FILE.v` circuits
kernels.py   bit-exact fast matrix products / convolutions on operand codes
emulate.py   the validated `ecomac emulate` entry and its benchmark
data.py      offline data sets (digits, MNIST-5k, FILE.npz) and their deterministic splits
models.py    the shipped MLP and LeNet-like CNN; checkpoints
layers.py    emulated Linear/Conv2d on a datapath, `convert` by spec or per-layer mapping
importer.py  PyTorch / ONNX models -> the energy model's layer list
evaluate.py  accuracy beside energy per datapath
train.py     the training loop of every mode; potq.py (ALS-POTQ), qat.py (int8/ASM/approx-aware)
tuning.py    ALWANN weight tuning; alwann/ the NSGA-II multiplier assignment

This file imports nothing heavy: the CLI builds its parsers from the names below without
importing torch.
"""

ARCHS = ("mlp", "lenet")    # the architectures net.models builds
# the ALWANN search's options (net/alwann/): objectives and defaults
ALWANN_OBJECTIVES = ("accuracy", "loss")
ALWANN_DEFAULTS = {"objective": "accuracy", "pop": 50, "gens": 30, "tuning": "histogram", "seed": 0, "workers": 2,
                   "search_fraction": 0.25, "search_max": 1000, "calib": 512, "batch_size": 500}
