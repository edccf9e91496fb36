"""`ecomac nn train-experiments` (net/experiments.py): what runs over which seeds, what is written,
one-line refusals, and the deprecated `ecomac train-experiments` alias. net.train.experiment is
replaced by a recorder (the real runs are `make experiments`)."""
import json

import pytest

from ecomac.cli import main
from net.experiments import TRAIN_EXPERIMENTS, select_experiments


@pytest.mark.parametrize("kwargs,text", [
    ({"only": ["mlp:digits", "x:y"]}, "--only 'x:y': not an experiment (experiments: mlp:digits, lenet:mnist)"),
    ({"seeds": 0}, "--seeds must be in 1..10, got 0"),
    ({"seeds": 11}, "--seeds must be in 1..10, got 11"),
    ({"seed": [1, -1]}, "--seed must be in 0..2^32-1, got -1"),
])
def test_selection_refused_in_one_line(kwargs, text):
    with pytest.raises(ValueError) as e:
        select_experiments(**kwargs)
    assert str(e.value) == text


def test_selection():
    assert select_experiments() == (list(TRAIN_EXPERIMENTS), (0, 1, 2))
    assert select_experiments(["lenet:mnist"], seeds=2) == ([TRAIN_EXPERIMENTS[1]], (0, 1))
    assert select_experiments(seeds=5, seed=[7, 3]) == (list(TRAIN_EXPERIMENTS), (7, 3))


def _fake_experiment(calls):
    def experiment(arch, data, *, seeds, epochs, ft_epochs, batch_size, configs, train_limit, on_seed):
        calls.append({"arch": arch, "data": data, "seeds": seeds, "epochs": epochs, "configs": configs})
        res = {"arch": arch, "data": data, "train_samples": 10, "test_samples": 5, "epochs": epochs,
               "ft_epochs": ft_epochs, "batch_size": batch_size, "lr": 0.5, "seeds": [], "summary": []}
        for s in seeds:
            res["seeds"].append(s)
            res["summary"] = [{"label": "FP32", "accuracy_pct_mean": 90.0 + s, "accuracy_pct_std": 0.0,
                               "drop_pp_mean": 0.0, "drop_pp_std": 0.0, "seconds_mean": 1.0}]
            on_seed(res)
        return res
    return experiment


@pytest.mark.parametrize("argv,warned", [(["nn", "train-experiments"], False), (["train-experiments"], True)])
def test_runs_and_writes(argv, warned, tmp_path, monkeypatch, capsys):
    import net.train
    from net.train import CONFIG_SETS
    calls = []
    monkeypatch.setattr(net.train, "experiment", _fake_experiment(calls))
    assert main(argv + ["-o", str(tmp_path), "--only", "mlp:digits", "--seed", "4", "--seed", "2", "--json"]) == 0
    cap = capsys.readouterr()
    assert calls == [{"arch": "mlp", "data": "digits", "seeds": (4, 2), "epochs": TRAIN_EXPERIMENTS[0][2],
                      "configs": CONFIG_SETS[TRAIN_EXPERIMENTS[0][5]]}]
    saved = json.loads((tmp_path / "train_mlp_digits.json").read_text())
    assert saved["seeds"] == [4, 2] and saved["command"].endswith("(= ecomac nn train-experiments -o build/experiments)")
    assert saved["wall_s"] >= 0
    assert [r["seeds"] for r in json.loads(cap.out)] == [[4, 2]]
    lines = cap.err.splitlines()
    assert lines[-1].startswith("mlp on digits: ") and lines[-1].endswith(f"-> {tmp_path / 'train_mlp_digits.json'}")
    assert (lines[0] == "ecomac: warning: `ecomac train-experiments` is deprecated; use "
                        "`ecomac nn train-experiments`") == warned and len(lines) == 1 + warned


@pytest.mark.parametrize("argv", [["nn", "train-experiments"], ["train-experiments"]])
def test_refusal_is_one_error_line(argv, tmp_path, capsys):
    assert main(argv + ["-o", str(tmp_path / "out"), "--seeds", "0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "ecomac: error: --seeds must be in 1..10, got 0"
    assert not (tmp_path / "out").exists()
