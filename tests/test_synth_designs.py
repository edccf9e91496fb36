"""synth/designs.py: the designs' Verilog files and synthesis below the CLI, with the hooks the
CLI hangs its progress on (Heartbeat around each slow step, the bar of `synth --all`)."""
import json
from contextlib import contextmanager

from synth import designs


def test_write_verilog_and_synth_design_announce_each_slow_step(tmp_path):
    steps = []

    @contextmanager
    def heartbeat(label):
        steps.append(label)
        yield

    sheet = designs.write_verilog("int-mac", {"bits": 4}, tmp_path / "m.v", module="m4", heartbeat=heartbeat)
    assert steps == ["generating int-mac Verilog"]
    assert sheet["module"] == "m4" and "module m4(" in (tmp_path / "m.v").read_text()
    assert json.loads((tmp_path / "m.json").read_text()) == sheet
    res = designs.synth_design("int-mac", {"bits": 4}, heartbeat=heartbeat)
    assert steps[1:] == ["generating int-mac Verilog", "synthesizing int-mac (Yosys; cached afterwards)"]
    assert res["design"] == "int-mac" and res["params"]["bits"] == 4 and "netlist" not in res


def test_synth_defaults_reports_progress_and_writes_each_result(tmp_path, monkeypatch):
    small = [d for d in designs.default_designs() if d.name in ("int-mac", "mul-array")]
    assert len(small) == 2
    monkeypatch.setattr(designs, "default_designs", lambda: small)
    calls = []
    rows = designs.synth_defaults(tmp_path, workers=1, progress=lambda *a: calls.append(a))
    assert calls == [(0, 2, ""), (1, 2, small[0].name), (2, 2, small[1].name)]   # pool.map keeps the order
    assert {r["design"] for r in rows} == {"int-mac", "mul-array"}
    for d in small:
        assert json.loads((tmp_path / f"{d.module}.json").read_text())["design"] == d.name
