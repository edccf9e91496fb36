"""--device on nn train, nn eval, alwann search and emulate --bench: validated before any work
(CUDA asked for where PyTorch has none: one line, exit 2, nothing written)."""
import pytest
import torch

from ecomac.cli import main

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present: the refusal does not apply")


@NO_CUDA
@pytest.mark.parametrize("argv", [
    ["nn", "train", "--arch", "mlp", "--data", "digits", "--epochs", "1", "-o", "{tmp}/m.pt"],
    ["nn", "eval", "--model", "{tmp}/missing.pt", "--data", "digits", "--datapath", "int8"],
    ["alwann", "search", "--model", "{tmp}/missing.pt", "--data", "digits", "-o", "{tmp}/out"],
    ["emulate", "--bench"],
])
def test_cuda_without_cuda_is_one_line(argv, tmp_path, capsys):
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--device", "cuda"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "--device cuda: this PyTorch" in err[0] and "has no CUDA device; use --device cpu" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_emulate_device_applies_to_bench(tmp_path, capsys):
    code = main(["emulate", "--datapath", "int8", "--x", "x.npy", "--w", "w.npy", "-o", str(tmp_path / "y.npy"),
                 "--device", "cpu"])
    assert code == 2 and "--device applies to --bench" in capsys.readouterr().err
