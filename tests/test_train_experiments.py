"""`ecomac nn train-experiments` (net/experiments.py): what runs over which seeds, what is written,
one-line refusals, and the deprecated `ecomac train-experiments` alias. net.train_runs.experiment is
replaced by a recorder (the real runs are `make experiments`)."""
import json

import pytest

from ecomac.cli import main
from net.experiments import ALL_EXPERIMENTS, HADES_EXPERIMENTS, POTQ_EXPERIMENTS, TRAIN_EXPERIMENTS, select_experiments


@pytest.mark.parametrize("kwargs,text", [
    ({"only": ["mlp:digits", "x:y"]}, "--only 'x:y': not an experiment (experiments: mlp:digits, lenet:mnist, mlp:digits:potq, lenet:mnist:potq, resnet:mnist:potq, vit:mnist:potq, mobilenet:mnist:hades, resnet:mnist:hades)"),
    ({"seeds": 0}, "--seeds must be in 1..10, got 0"),
    ({"seeds": 11}, "--seeds must be in 1..10, got 11"),
    ({"seed": [1, -1]}, "--seed must be in 0..2^32-1, got -1"),
])
def test_selection_refused_in_one_line(kwargs, text):
    with pytest.raises(ValueError) as e:
        select_experiments(**kwargs)
    assert str(e.value) == text


def test_selection():
    assert select_experiments() == (list(ALL_EXPERIMENTS), None)
    assert ALL_EXPERIMENTS == TRAIN_EXPERIMENTS + POTQ_EXPERIMENTS + HADES_EXPERIMENTS
    assert select_experiments(["lenet:mnist"], seeds=2) == ([TRAIN_EXPERIMENTS[1]], (0, 1))
    assert select_experiments(seeds=5, seed=[7, 3]) == (list(ALL_EXPERIMENTS), (7, 3))
    assert select_experiments(["mlp:digits:potq"]) == ([POTQ_EXPERIMENTS[0]], None)
    assert select_experiments(["resnet:mnist:hades", "mobilenet:mnist:hades"]) == (
        [HADES_EXPERIMENTS[1], HADES_EXPERIMENTS[0]], None)


def test_hades_config_set():
    """Every HADES row fine-tunes from the FP32 pretrain, the FP32 baseline too (same epochs and
    optimizer); the alphabets {1}, {1,3}, {1,3,5,7} at 8 and 4 bits; the goal rows run every seed."""
    from net.datapath import parse
    from net.experiments import _seed_limits
    from net.train_runs import CONFIG_SETS, HADES_GOAL
    rows = CONFIG_SETS["hades"]
    assert [r[:3] for r in rows[:2]] == [("FP32 pretrain", "train", None), ("FP32", "finetune", None)]
    assert all(r[1] == "finetune" and parse(r[2]).kind == "asm" for r in rows[2:])
    got = {(tuple(parse(r[2]).params["alphabet"]), parse(r[2]).params["w_bits"]) for r in rows[2:]}
    assert got == {(a, b) for a in ((1,), (1, 3), (1, 3, 5, 7)) for b in (8, 4)}
    assert set(HADES_GOAL) < {r[0] for r in rows}
    limits = _seed_limits("hades", "resnet")
    assert set(limits) == {r[0] for r in rows[2:]} - set(HADES_GOAL) and _seed_limits("potq", "resnet") is None


def _fake_experiment(calls):
    def experiment(arch, data, *, seeds, epochs, ft_epochs, batch_size, configs, train_limit, on_seed, **extra):
        calls.append({"arch": arch, "data": data, "seeds": seeds, "epochs": epochs, "configs": configs, **extra})
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
    import net.train_runs
    from net.train_runs import CONFIG_SETS
    calls = []
    monkeypatch.setattr(net.train_runs, "experiment", _fake_experiment(calls))
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


def test_hades_runs_five_seeds_into_its_own_file(tmp_path, monkeypatch, capsys):
    import net.train_runs
    from net.experiments import HADES_MORE_SEEDS, HADES_SEEDS
    calls = []
    monkeypatch.setattr(net.train_runs, "experiment", _fake_experiment(calls))
    assert main(["nn", "train-experiments", "-o", str(tmp_path), "--only", "resnet:mnist:hades"]) == 0
    assert [(c["arch"], c["seeds"], c["configs"]) for c in calls] == [
        ("resnet", HADES_SEEDS["resnet"], net.train_runs.HADES_CONFIGS)]
    assert min(map(len, HADES_SEEDS.values())) >= 5
    assert set(calls[0]["seed_limits"].values()) == {HADES_MORE_SEEDS["resnet"]}
    assert json.loads((tmp_path / "train_resnet_mnist_hades.json").read_text())["seeds"] == list(HADES_SEEDS["resnet"])


def test_seed_limits_run_a_row_on_the_first_seeds_only(monkeypatch):
    """net.train_runs.experiment with seed_limits: the limited row trains on seeds 0..N-1 only, its summary
    counts them, its drop is against the same seed's FP32 (training replaced by a recorder)."""
    import net.train_runs
    trained = []

    def fake_train(model, ds, *, datapath=None, seed=0, epochs=1, init=None, **kw):
        trained.append((datapath, seed, init is not None))
        acc = 90.0 + seed - (datapath is not None)
        return model, {"test_accuracy_pct": acc, "train_accuracy_pct": acc, "epochs": []}
    monkeypatch.setattr(net.train_runs, "train", fake_train)
    monkeypatch.setattr(net.train_runs, "training_energy", lambda *a, **k: {"energy_per_step_pj": 1.0,
                                                                       "energy_per_epoch_pj": 2.0})
    rows = net.train_runs.HADES_CONFIGS[:2] + net.train_runs.HADES_CONFIGS[4:5]
    res = net.train_runs.experiment("mlp", "digits", seeds=(3, 4), epochs=1, ft_epochs=1, configs=rows,
                               seed_limits={rows[2][0]: 4})       # seeds 0..3: of these, seed 3
    assert trained == [(None, 3, False), (None, 3, True), (rows[2][2], 3, True), (None, 4, False), (None, 4, True)]
    assert [(s["label"], s["seeds"], s["drop_pp_mean"]) for s in res["summary"]] == [
        ("FP32 pretrain", 2, 0.0), ("FP32", 2, 0.0), (rows[2][0], 1, 1.0)]
    assert res["seed_limits"] == {rows[2][0]: 4}


@pytest.mark.parametrize("argv", [["nn", "train-experiments"], ["train-experiments"]])
def test_refusal_is_one_error_line(argv, tmp_path, capsys):
    assert main(argv + ["-o", str(tmp_path / "out"), "--seeds", "0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "ecomac: error: --seeds must be in 1..10, got 0"
    assert not (tmp_path / "out").exists()


# ---- `ecomac nn experiments` (post-training evaluation over datapaths) ------------------------
def test_eval_selection_and_datapath_expansion(monkeypatch):
    from net import experiments
    assert experiments.select_eval_experiments(None) == list(experiments.EVAL_EXPERIMENTS)
    assert experiments.select_eval_experiments(["mlp:mnist"]) == [("mlp", "mnist", 10)]
    with pytest.raises(ValueError) as e:
        experiments.select_eval_experiments(["mlp:digits", "x:y"])
    assert str(e.value) == ("--only 'x:y': not an experiment (experiments: mlp:digits, lenet:mnist, resnet:mnist, "
                            "mobilenet:mnist, vit:mnist, resnet:digits, mobilenet:digits, vit:digits, "
                            "lenet:digits, mlp:mnist)")
    seen = []
    monkeypatch.setattr(experiments, "standard_datapaths", lambda progress=None: seen.append(1) or ["int8", "mfmac"])
    assert experiments.expand_datapaths([" fp32", "all", "int8", "asm"]) == ["fp32", "int8", "mfmac", "asm"]
    assert seen == [1]
    assert experiments.expand_datapaths(["int8"]) == ["int8"] and seen == [1]     # no sweep without "all"


def test_eval_experiments_run_write_and_log(tmp_path, monkeypatch, capsys):
    import numpy as np

    import net.evaluate
    from net import experiments
    calls = []

    def experiment(arch, data, seeds, epochs, specs):
        calls.append((arch, data, seeds, epochs, tuple(specs)))
        return {"arch": arch, "data": data, "epochs": epochs, "seeds": list(seeds), "runs": [],
                "summary": [{"datapath": s, "macs": np.int64(7)} for s in specs]}
    monkeypatch.setattr(net.evaluate, "experiment", experiment)
    monkeypatch.setattr(experiments, "standard_datapaths", lambda progress=None: ["int8", "mfmac"])
    assert main(["nn", "experiments", "-o", str(tmp_path), "--only", "lenet:digits", "--json"]) == 0
    cap = capsys.readouterr()
    assert calls == [("lenet", "digits", (0, 1, 2), 20, ("int8", "mfmac"))]
    saved = json.loads((tmp_path / "nn_eval_lenet_digits.json").read_text())
    assert saved["summary"][0]["macs"] == 7 and saved["command"].endswith("(= ecomac nn experiments -o build/experiments)")
    assert [r["arch"] for r in json.loads(cap.out)] == ["lenet"]
    assert cap.err.splitlines()[-1].startswith("lenet on digits: 2 datapaths x 3 seeds in ")
