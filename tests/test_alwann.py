"""ALWANN search (net/alwann/, `ecomac alwann`): chromosome decoding, resume = uninterrupted,
Dask = processes = this process, pick + `nn eval --mapping` reproduce the front exactly, bad input.

A tiny setup keeps it fast: the MLP trained 3 epochs on digits, four multipliers (no sweep), a
10% search split, population 6, 3 generations."""
import json

import numpy as np
import pytest
import torch

from ecomac.cli import main
from net import alwann, data, models, train

MULTS = ("approx:mul-drum,k=3", "approx:mul-trunc,k=8,correction=0", "approx:mul-mitchell,frac_bits=3")


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    torch.manual_seed(0)
    ds = data.load("digits")
    m = models.build("mlp", ds.input_shape, ds.num_classes)
    m, _ = train.train(m, ds, epochs=3, seed=0, progress=False)
    p = tmp_path_factory.mktemp("model") / "mlp.pt"
    models.save(m, p, {"data": "digits"})
    return str(p)


@pytest.fixture(scope="module")
def setup(mlp):
    return alwann.prepare(mlp, "digits", tiles=2, tuning="uniform", extra=MULTS, sweep=False, search_fraction=0.1)


def _search_args(model, out, *extra, tiles="2"):
    args = ["alwann", "search", "--model", model, "--data", "digits", "--no-sweep", "--tiles", tiles, "--pop", "6",
            "--gens", "2", "--workers", "1", "--search-fraction", "0.1", "--no-energy", "-o", str(out)]
    for m in MULTS:
        args += ["--mult", m]
    return args + list(extra)


def _one_error_line(capsys, argv, expected_start):
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ecomac: error: " + expected_start), lines[0]
    return lines[0]


def test_chromosome_decoding_and_relative_energy():
    space = alwann.SearchSpace(layers=("a", "b", "c"), macs=(100, 10, 1), specs=("s0", "s1", "s2", "s3"),
                               energies=(0.05, 0.1, 0.15, 0.2), tiles=2, exact=3)
    # genes: tile multipliers (3, 1), then layer tiles (1, 0, 1): a -> tile 1 -> s1, b -> tile 0 -> s3, ...
    assert space.decode([3, 1, 1, 0, 1]) == (1, 3, 1)
    assert space.decode(space.uniform(2)) == (2, 2, 2)
    xl, xu = space.bounds()
    assert xl.tolist() == [0] * 5 and xu.tolist() == [3, 3, 1, 1, 1]
    assert space.relative_energy((1, 3, 1)) == pytest.approx((100 * 0.1 + 10 * 0.2 + 1 * 0.1) / (111 * 0.2))
    assert space.relative_energy((3, 3, 3)) == 1.0
    assert space.layer_specs((0, 1, 2)) == {"a": "s0", "b": "s1", "c": "s2"}
    with pytest.raises(ValueError, match="^chromosome gene out of range$"):
        space.decode([4, 0, 0, 0, 0])
    with pytest.raises(ValueError, match=r"^a chromosome has 5 genes \(2 tiles \+ 3 layers\), got 4$"):
        space.decode([0, 0, 0, 0])
    pop = alwann.initial_population(space, 6, seed=1)
    assert [space.decode(x) for x in pop[:4]] == [(c, c, c) for c in range(4)]     # every multiplier alone
    assert len({tuple(x) for x in pop}) == 6


def test_front_is_the_non_dominated_set():
    pts = [{"mapping": (i,), "accuracy_search_pct": a, "relative_multiplier_energy": e}
           for i, (a, e) in enumerate([(90, 0.5), (95, 0.6), (94, 0.7), (95, 0.6), (99, 1.0), (80, 0.5)])]
    assert [p["mapping"] for p in alwann.front_of(pts)] == [(0,), (1,), (4,)]


def test_resume_equals_an_uninterrupted_run(setup, tmp_path):
    with alwann.Engine(setup.ctx, workers=1) as eng:
        whole = alwann.search(setup.ctx, setup.space, eng, pop=6, gens=3, seed=4)
        ck = tmp_path / alwann.CHECKPOINT
        part = alwann.search(setup.ctx, setup.space, eng, pop=6, gens=3, seed=4, checkpoint=ck, stop_after=1)
        assert part.generations == 1 and ck.is_file()
        rest = alwann.search(setup.ctx, setup.space, eng, pop=6, gens=3, seed=4, checkpoint=ck, resume=True)
    assert rest.generations == whole.generations == 3
    assert rest.evaluated == whole.evaluated
    assert rest.front() == whole.front()
    assert len(whole.evaluated) > 6                    # the later generations found new mappings
    with alwann.Engine(setup.ctx, workers=1) as eng:   # resuming a finished search adds no generation
        again = alwann.search(setup.ctx, setup.space, eng, pop=6, gens=3, seed=4, checkpoint=ck, resume=True)
        more = alwann.search(setup.ctx, setup.space, eng, pop=6, gens=4, seed=4, checkpoint=ck, resume=True)
    assert again.generations == 3 and again.evaluations == 0 and again.front() == whole.front()
    assert more.generations == 4                       # a larger --gens extends it


def test_dask_local_cluster_and_processes_give_the_same_front(setup):
    distributed = pytest.importorskip("distributed")
    opts = {"objective": "loss"}         # the finer objective: equal losses need bit-equal logits
    with alwann.Engine(setup.ctx, workers=1) as eng:
        here = alwann.search(setup.ctx, setup.space, eng, pop=6, gens=2, seed=7, options=opts)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cl:
        with alwann.Engine(setup.ctx, scheduler=cl.scheduler_address) as eng:
            assert eng.description.startswith("Dask scheduler")
            dask = alwann.search(setup.ctx, setup.space, eng, pop=6, gens=2, seed=7, options=opts)
    with alwann.Engine(setup.ctx, workers=2) as eng:
        procs = alwann.search(setup.ctx, setup.space, eng, pop=6, gens=2, seed=7, options=opts)
    assert dask.evaluated == here.evaluated == procs.evaluated
    assert dask.front() == here.front() == procs.front()


def test_search_pick_and_nn_eval_reproduce_the_front_exactly(mlp, tmp_path, capsys):
    out = tmp_path / "front"
    assert main(_search_args(mlp, out, "--tuning", "histogram")) == 0
    capsys.readouterr()
    doc = json.loads((out / "front.json").read_text())
    for k in ("front.csv", "front.png", alwann.CHECKPOINT):
        assert (out / k).is_file()
    assert doc["front"] and len(doc["references"]) == len(MULTS) + 1
    ref = {r["label"]: r for r in doc["references"]}
    assert ref["array"]["drop_pp"] == 0.0 and ref["array"]["relative_multiplier_energy"] == 1.0
    p = doc["front"][0]
    assert set(p["accuracy_test_pct_by_tuning"]) == {"none", "uniform", "histogram"}
    assert p["accuracy_test_pct_by_tuning"]["histogram"] == p["accuracy_test_pct"]
    assert len(doc["evaluated"]) == doc["search"]["evaluated"]

    hw = tmp_path / "hw"
    assert main(["alwann", "pick", str(out), "--max-drop", "100", "-o", str(hw), "--json"]) == 0
    picked = json.loads(capsys.readouterr().out)
    point = picked["point"]
    assert point["relative_multiplier_energy"] == min(r["relative_multiplier_energy"] for r in doc["front"])
    for t in picked["tiles"]:
        if t["spec"] != "approx:mul-array":
            assert (hw / t["verilog"]).is_file() and (hw / t["verilog"]).with_suffix(".json").is_file()
            assert "module " + t["module"] in (hw / t["verilog"]).read_text()
    # every tile's Verilog goes into one project: no module (top or sub) is defined twice
    import re
    defined = [m for t in picked["tiles"] for m in re.findall(r"^module\s+([^\s(]+)", (hw / t["verilog"]).read_text(), re.M)]
    assert len(defined) == len(set(defined)), defined
    assert len({t["module"] for t in picked["tiles"]}) == len(picked["tiles"])
    assert json.loads((hw / "mapping.json").read_text()) == point["mapping"]

    assert main(["nn", "eval", "--model", str(hw / "tuned_model.pt"), "--data", "digits",
                 "--mapping", str(hw / "mapping.json"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    row = [r for r in rows if r["datapath"].startswith("mapping")][0]
    assert row["accuracy_pct"] == point["accuracy_test_pct"]


def test_no_tuning_comparison_and_eval_batch_keep_the_front(mlp, tmp_path, capsys):
    """--no-tuning-comparison: the front and its test accuracies as with the comparison (the same search),
    no per-tuning accuracies and no tuning table; --eval-batch (memory) changes no accuracy and the mean losses
    only in their last bits (summation order)."""
    assert main(_search_args(mlp, tmp_path / "a", "--json")) == 0
    full = json.loads(capsys.readouterr().out)
    assert main(_search_args(mlp, tmp_path / "b", "--no-tuning-comparison", "--eval-batch", "7")) == 0
    out = capsys.readouterr().out
    doc = json.loads((tmp_path / "b" / "front.json").read_text())
    assert [(r["mapping"], r["accuracy_test_pct"]) for r in doc["front"]] == [
        (r["mapping"], r["accuracy_test_pct"]) for r in full["front"]]
    assert all("accuracy_test_pct_by_tuning" not in r for r in doc["front"])
    assert [r["loss_search"] for r in doc["front"]] == pytest.approx([r["loss_search"] for r in full["front"]],
                                                                     rel=1e-12)     # summed in other batches
    assert "each weight tuning" not in out and "ALWANN front" in out


def test_tuned_model_runs_the_tuned_codes(setup):
    """The tuned float weights reach the MAC as exactly the tuned codes (net.layers' own quantizer)."""
    from net import layers, tuning
    spec = MULTS[1]
    specs = {n: spec for n in setup.space.layers}
    m = alwann.mapped_model(setup.model, specs, "uniform", {}, setup.ctx.calib)
    m(torch.from_numpy(setup.ctx.calib[:4]))
    tmap = tuning.tune_map(spec)
    for name, layer in layers.emulated_layers(m).items():
        w = dict(setup.model.named_modules())[name].weight.detach().numpy()
        codes, _ = layer.dp.quantize(w.astype(np.float64), "w", axis=0)
        assert np.array_equal(layer.last_w_codes.T if layer.last_w_codes.ndim == 2 else layer.last_w_codes,
                              tmap[codes + 128])


def test_bad_input_is_one_line(mlp, tmp_path, capsys):
    out = tmp_path / "o"
    _one_error_line(capsys, _search_args(mlp, out, "--mult", "approx:mul-nope"),
                    "datapath 'approx:mul-nope': unknown multiplier family 'mul-nope' (families: mul-array")
    _one_error_line(capsys, _search_args(mlp, out, "--mult", "int8"),
                    "multiplier 'int8' is not an approximate multiplier")
    table = tmp_path / "t.npy"
    np.save(table, (np.arange(256)[:, None] * np.arange(256)[None, :]).astype(np.uint16))
    _one_error_line(capsys, _search_args(mlp, out, "--mult", f"lut:{table}"),
                    f"multiplier 'lut:{table}': a bare table has no circuit to price")
    lib = tmp_path / "lib.json"
    lib.write_text(json.dumps(["approx:mul-drum,k=4", 7]))
    _one_error_line(capsys, _search_args(mlp, out, "--library", str(lib)),
                    f"library {lib}: entry 1 must be a spec string")
    lib.write_text("{not json")
    _one_error_line(capsys, _search_args(mlp, out, "--library", str(lib)), f"library {lib}: not valid JSON")
    msg = _one_error_line(capsys, _search_args(mlp, out, tiles="4"), "--tiles must be in 1..3")
    assert "fc1, fc2, fc3" in msg and msg.endswith("got 4")
    _one_error_line(capsys, _search_args(mlp, out, "--resume"), f"--resume: no checkpoint {out}")
    _one_error_line(capsys, _search_args(mlp, out, "--scheduler", "tcp://127.0.0.1:9"),
                    "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'")
    assert not out.exists() or not (out / "front.json").exists()


def test_foreign_checkpoint_is_refused(mlp, setup, tmp_path, capsys):
    out = tmp_path / "s"
    with alwann.Engine(setup.ctx, workers=1) as eng:          # a checkpoint of tiles=2, tuning uniform
        alwann.search(setup.ctx, setup.space, eng, pop=6, gens=3, seed=0, checkpoint=out / alwann.CHECKPOINT,
                      stop_after=1, options={"search_fraction": 0.1, "calib": 512})
    _one_error_line(capsys, _search_args(mlp, out, "--resume", "--tuning", "uniform", "--mult", "approx:mul-drum,k=5"),
                    f"--resume: checkpoint {out / alwann.CHECKPOINT} is from another multiplier library")
    _one_error_line(capsys, _search_args(mlp, out, "--resume", "--tuning", "uniform", tiles="3"),
                    f"--resume: checkpoint {out / alwann.CHECKPOINT} is from another set of options (tiles 2 there, "
                    f"3 here)")
    (out / alwann.CHECKPOINT).write_bytes(b"not a pickle")
    _one_error_line(capsys, _search_args(mlp, out, "--resume"),
                    f"--resume: {out / alwann.CHECKPOINT} is not an ALWANN search checkpoint")
