"""The report's heavy sections: computed only by `ecomac report --heavy`, kept, then included."""
from types import SimpleNamespace

from ecomac.report import collect_sections, heavy_section_path


def _module(calls):
    def make(outdir):
        calls.append(outdir)
        return "slow figures"
    return SimpleNamespace(report_sections=lambda outdir: [(5, "Quick", "quick body")],
                           heavy_report_sections=lambda: [(3, "Slow Part (x)", 42, make)])


def test_heavy_section_is_not_computed_by_a_plain_report(tmp_path):
    calls = []
    secs = collect_sections([_module(calls)], tmp_path / "report", False, tmp_path / "exp")
    assert calls == []
    assert [t for _, t, _ in secs] == ["Slow Part (x)", "Quick"]          # report order kept
    body = secs[0][2]
    assert "Not computed" in body and "about 42 minutes" in body and "make experiments" in body


def test_heavy_section_is_kept_and_included_later(tmp_path):
    calls = []
    collect_sections([_module(calls)], tmp_path / "report", True, tmp_path / "exp")
    assert calls == [tmp_path / "report"]
    kept = heavy_section_path(tmp_path / "exp", "Slow Part (x)")
    assert kept.read_text() == "slow figures" and kept.name == "slow_part_x.md"
    secs = collect_sections([_module(calls)], tmp_path / "report", False, tmp_path / "exp")
    assert len(calls) == 1 and secs[0][2].startswith("slow figures")
