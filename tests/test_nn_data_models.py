"""net/data.py and net/models.py: shipped data sets, the seeded stratified split, .npz input,
the shipped models on any input size, model files (checkpoint, whole module, TorchScript) and
every bad file as one line."""
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from net import data, loader, models


class _Whole(nn.Module):
    """A user model saved whole (importable: the class lives in this test module)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)


def _npz(tmp_path, name="d.npz", **arrays):
    p = tmp_path / name
    np.savez(p, **arrays)
    return str(p)


def test_digits_shipped_scaled_and_split_stratified():
    ds = data.load("digits")
    assert ds.input_shape == (1, 8, 8) and ds.num_classes == 10
    n = len(ds.y_train) + len(ds.y_test)
    assert n == 1797 and ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0 and ds.x_train.max() == 1.0
    # per class, round(20%) of its samples in test
    all_y = np.concatenate([ds.y_train, ds.y_test])
    for c in range(10):
        assert (ds.y_test == c).sum() == round(0.2 * (all_y == c).sum())


def test_split_is_seeded_disjoint_and_complete(tmp_path):
    rng = np.random.default_rng(5)
    x = np.arange(60, dtype=np.float32).reshape(60, 1)      # x encodes the sample's index
    y = rng.integers(0, 3, 60)
    path = _npz(tmp_path, x=x, y=y)
    a, b, c = data.load(path, seed=0), data.load(path, seed=0), data.load(path, seed=1)
    assert np.array_equal(a.x_test, b.x_test) and not np.array_equal(a.x_test, c.x_test)
    idx = np.concatenate([a.x_train[:, 0], a.x_test[:, 0]]).astype(int)
    assert sorted(idx.tolist()) == list(range(60))
    assert np.array_equal(a.y_test, y[a.x_test[:, 0].astype(int)])
    rest, search = data.split_search(a, 0.25, seed=0)
    assert len(rest.y_train) + len(search.y_train) == len(a.y_train)
    assert not set(rest.x_train[:, 0]) & set(search.x_train[:, 0])
    assert np.array_equal(search.x_test, a.x_test)


@pytest.mark.parametrize("arrays,msg", [
    ({"x": np.zeros((10, 4))}, "missing array(s) y"),
    ({"x": np.zeros((10, 4, 4)), "y": np.zeros(10, int)}, "x must be N x C x H x W or N x F, got shape (10, 4, 4)"),
    ({"x": np.zeros((10, 4)), "y": np.zeros((10, 1), int)}, "y must be a vector of N labels"),
    ({"x": np.zeros((10, 4)), "y": np.zeros(9, int)}, "x has 10 samples but y has 9 labels"),
    ({"x": np.zeros((0, 4)), "y": np.zeros(0, int)}, "empty data set"),
    ({"x": np.zeros((10, 4)), "y": np.array([0, 1] * 4 + [-1, 1])}, "labels out of range: -1 < 0"),
    ({"x": np.zeros((10, 4)), "y": np.full(10, 0.5)}, "y must hold integer labels"),
    ({"x": np.full((10, 4), np.nan), "y": np.arange(10) % 2}, "x holds NaN"),
    ({"x": np.zeros((10, 4)), "y": np.zeros(10, int)}, "needs at least 2 classes"),
])
def test_bad_npz_is_one_line(tmp_path, arrays, msg):
    with pytest.raises(ValueError) as e:
        data.load(_npz(tmp_path, **arrays))
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_bad_data_names_and_files(tmp_path):
    with pytest.raises(ValueError, match="unknown data 'cifar': use digits or mnist or a FILE.npz"):
        data.load("cifar")
    with pytest.raises(ValueError, match="does not exist"):
        data.load(str(tmp_path / "none.npz"))
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable .npz file"):
        data.load(str(tmp_path / "junk.npz"))


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 5, 7), (1, 2, 2), (1, 1, 1)])
def test_lenet_takes_any_input_size(shape):
    m = models.build("lenet", shape, 4)
    assert m(torch.zeros(2, *shape)).shape == (2, 4)
    assert models.build("mlp", shape, 4)(torch.zeros(2, *shape)).shape == (2, 4)


def test_lenet_is_lenet5_on_28x28():
    m = models.build("lenet", (1, 28, 28), 10)
    assert (m.conv1.padding, m.conv2.padding, m.fc1.in_features) == ((2, 2), (0, 0), 16 * 5 * 5)
    assert [m.fc1.out_features, m.fc2.out_features, m.fc3.out_features] == [120, 84, 10]


def test_build_refuses():
    with pytest.raises(ValueError, match="unknown architecture 'vgg': use one of mlp, lenet, resnet"):
        models.build("vgg", (1, 8, 8), 10)
    with pytest.raises(ValueError, match="lenet needs a C x H x W input shape"):
        models.build("lenet", (64,), 10)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        models.build("mlp", (64,), 1)


def test_checkpoint_whole_module_and_torchscript_load(tmp_path):
    torch.manual_seed(0)
    m = models.build("lenet", (1, 8, 8), 10).eval()
    x = torch.rand(3, 1, 8, 8)
    models.save(m, tmp_path / "c.pt", {"note": "x"})
    got, meta = loader.load(tmp_path / "c.pt")
    assert meta["arch"] == "lenet" and meta["input_shape"] == [1, 8, 8] and meta["note"] == "x"
    assert torch.equal(got(x), m(x))
    torch.save(m, tmp_path / "whole.pt")
    got, meta = loader.load(tmp_path / "whole.pt")
    assert meta["format"] == "module" and torch.equal(got(x), m(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(m).save(str(tmp_path / "ts.pt"))
    got, meta = loader.load(tmp_path / "ts.pt")
    assert meta["format"] == "torchscript" and torch.equal(got(x), m(x))
    user = _Whole()
    torch.save(user, tmp_path / "user.pt")
    got, _ = loader.load(tmp_path / "user.pt")
    assert isinstance(got, _Whole)


def test_bad_model_files_are_one_line(tmp_path):
    m = models.build("lenet", (1, 8, 8), 10)
    (tmp_path / "junk.pt").write_text("hello")
    torch.save(m.state_dict(), tmp_path / "sd.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    torch.save({"arch": "mlp", "input_shape": [1, 8, 8], "num_classes": 10, "state_dict": m.state_dict()},
               tmp_path / "mismatch.pt")
    sd = models.build("lenet", (1, 8, 8), 10).state_dict()
    torch.save({"arch": "lenet", "input_shape": [1, 28, 28], "num_classes": 10, "state_dict": sd},
               tmp_path / "shape.pt")
    cases = {"junk.pt": "not a model file", "sd.pt": "a bare state_dict has no architecture",
             "list.pt": "holds a list, not a model", "mismatch.pt": "architecture mismatch",
             "shape.pt": "architecture mismatch: fc1.weight is (120, 64)", "none.pt": "does not exist"}
    for name, msg in cases.items():
        with pytest.raises(ValueError) as e:
            loader.load(tmp_path / name)
        assert msg in str(e.value) and "\n" not in str(e.value), (name, str(e.value))
