"""The network level: networks run and trained on ecomac's datapaths (golden -> rtl -> synth ->
net -> ecomac: nothing here imports the CLI).

datapath.py  resolve a datapath spec (golden/datapath.py) incl. `lut:FILE.v` circuits
kernels.py   bit-exact fast matrix products / convolutions on operand codes (torch, any device)
plans.py     each datapath's exact fast path (separable BLAS terms or a table); kernel_tables.py the
             table kernels and the helpers both paths share
emulate.py   the validated `ecomac emulate` entry and its benchmark
data.py      offline data sets (digits, MNIST-5k, FILE.npz) and their deterministic splits
models.py    the shipped architectures (mlp, lenet, resnet, mobilenet, vit); checkpoints
loader.py    every model format (checkpoint, .pt2, ONNX, TorchScript, FILE.py:NAME) -> a module
graph.py     every product of a model lifted to a Linear / Conv / Matmul module (torch.fx), BatchNorm
             folding, conversion by a factory per kind, the census of every MAC
quant.py     the golden quantizers in torch, on the tensors' device
layers.py    emulated Linear/Conv2d/Matmul on a datapath
device.py    --device cpu|cuda; distributed.py training under torchrun (DDP)
importer.py  ONNX graphs -> the energy model's layer list and runnable modules
evaluate.py  accuracy beside energy per datapath
train.py     the training loop of every mode; potq.py (ALS-POTQ), qat.py (int8/ASM/approx-aware);
             train_runs.py the experiments over seeds (config sets, paired drops)
tuning.py    ALWANN weight tuning; alwann/ the NSGA-II multiplier assignment

This file imports nothing heavy: the CLI builds its parsers from the names below without
importing torch.
"""

ARCHS = ("mlp", "lenet", "resnet", "mobilenet", "vit")    # the architectures net.models builds
# the ALWANN search's options (net/alwann/): objectives and defaults
ALWANN_OBJECTIVES = ("accuracy", "loss")
ALWANN_DEFAULTS = {"objective": "accuracy", "pop": 50, "gens": 30, "tuning": "histogram", "seed": 0, "workers": 2,
                   "search_fraction": 0.25, "search_max": 1000, "calib": 512, "batch_size": 500}
