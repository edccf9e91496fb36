"""net.kernels: every fast path equals the definition (Datapath.matmul_definition) bit for bit,
on random and adversarial codes (extreme codes, zeros, K beyond float32's exact-sum range,
accumulators narrow enough to wrap); conv2d equals a direct loop over output positions."""
import numpy as np
import pytest

from golden import approx
from net import kernels as K
from net.datapath import parse

FAST = [
    # exact-product datapaths
    "int8", "int8,acc_bits=16", "int8,acc_bits=62",
    "asm", "asm,alphabet=1/3,w_bits=4", "asm,alphabet=1,w_bits=12,x_bits=16,acc_bits=40", "asm,alphabet=1/3/5/7/9/11/13/15",
    "mfmac,exp_bits=1", "mfmac,exp_bits=2,acc_bits=8", "mfmac", "mfmac,exp_bits=4", "mfmac,exp_bits=5",
    "mfmac,exp_bits=5,acc_bits=62", "mfmac,accumulator=tree8",
    # approximate multipliers, 2+ parameter points each
    "approx:mul-array", "approx:mul-exact,acc_bits=18",
    "approx:mul-trunc", "approx:mul-trunc,k=7,correction=1", "approx:mul-trunc,k=12,correction=1", "approx:mul-trunc,k=0",
    "approx:mul-bam", "approx:mul-bam,vbl=5,hbl=2", "approx:mul-bam,vbl=13,hbl=6,acc_bits=17",
    "approx:mul-drum", "approx:mul-drum,k=2", "approx:mul-drum,k=8",
    "approx:mul-mitchell", "approx:mul-mitchell,frac_bits=3", "approx:mul-mitchell,frac_bits=1,acc_bits=17",
]


def _codes(dp, role, shape, rng, kind="random"):
    lo, hi = dp.code_range(role)
    if dp.kind == "asm" and role == "w":
        from golden.asm import representable
        reps = representable(dp.params["alphabet"], dp.params["w_bits"])
        vals = np.concatenate([-reps[::-1], reps])
        if kind == "extreme":
            vals = np.array([-reps.max(), reps.max(), 0])
        return rng.choice(vals, shape)
    if kind == "extreme":
        if dp.kind == "mfmac":        # the largest magnitude of either sign, and zero
            E = dp.params["exp_bits"]
            top = (1 << E) - 1
            return rng.choice([top, top | (1 << E), 0, 1 << E], shape)
        return rng.choice([lo, hi, 0, lo + 1], shape)
    return rng.integers(lo, hi + 1, shape)


@pytest.mark.parametrize("spec", FAST)
def test_fast_path_equals_definition(spec):
    dp = parse(spec)
    rng = np.random.default_rng(abs(hash(spec)) % 2**32)
    for kind, (m, k, n) in (("random", (9, 150, 7)), ("extreme", (5, 1100, 4)), ("random", (3, 0, 2))):
        X, W = _codes(dp, "x", (m, k), rng, kind), _codes(dp, "w", (k, n), rng, kind)
        got = K.matmul(dp, X, W)
        assert got.dtype == np.int64 and got.shape == (m, n)
        assert np.array_equal(got, dp.matmul_definition(X, W)), (spec, kind)


@pytest.mark.parametrize("spec,path", [("int8", "blas"), ("approx:mul-trunc,k=3", "blas"),
                                       ("approx:mul-bam,vbl=5,hbl=2", "blas"), ("approx:mul-trunc", "table"),
                                       ("approx:mul-bam", "table"), ("approx:mul-drum", "blas"),
                                       ("approx:mul-mitchell", "table"), ("mfmac,exp_bits=5", "blas")])
def test_each_family_takes_its_fast_path(spec, path):
    assert K.plan(spec).path == path
    assert len(K.plan("approx:mul-drum").terms) == 1      # DRUM is separable: one BLAS product


@pytest.mark.parametrize("spec,terms", [("approx:mul-trunc", 5), ("approx:mul-trunc,k=7,correction=1", 9),
                                        ("approx:mul-bam", 7), ("approx:mul-bam,vbl=13,hbl=6,acc_bits=17", 2)])
def test_many_term_blas_plans_equal_definition(spec, terms):
    """The separable forms the table path replaces above MAX_BLAS_TERMS are exact too (the
    bit-plane decomposition's term count is the kept region's rank)."""
    dp = parse(spec)
    p = K.build_plan(dp, max_terms=99)
    assert p.path == "blas" and len(p.terms) == terms
    rng = np.random.default_rng(11)
    for kind, (m, k, n) in (("random", (9, 150, 7)), ("extreme", (5, 1100, 4))):
        X, W = _codes(dp, "x", (m, k), rng, kind), _codes(dp, "w", (k, n), rng, kind)
        assert np.array_equal(K.matmul(dp, X, W, plan_=p), dp.matmul_definition(X, W))


def test_int8_extremes_exceed_float32_exact_range():
    """K = 1100 products of (-128)(-128) sum to 2^24 * 1.07: a single float32 sum would round."""
    X = np.full((2, 1100), -128)
    W = np.full((1100, 3), -128)
    want = 1100 * 128 * 128
    assert want > 1 << 24
    assert np.all(K.matmul("int8,acc_bits=62", X, W) == want)
    assert np.all(K.matmul("int8", X, W) == ((want + 2**23) % 2**24) - 2**23)     # 24-bit wrap


def _table_file(tmp_path, suffix, rng, big=False):
    hi = 65536 if big else 1 << 14
    t = rng.integers(0, hi, (256, 256))
    p = tmp_path / f"t{suffix}"
    if suffix == ".npy":
        np.save(p, t.astype(np.uint16))
    else:
        p.write_bytes(t.astype("<u2").tobytes())
    return p, t


@pytest.mark.parametrize("suffix,big", [(".npy", False), (".bin", True)])
def test_lut_tables_equal_definition(tmp_path, suffix, big):
    """Arbitrary tables (products up to 65535: the int32 table path) on the table kernel, with
    more than one parallel row block (M >= 512), zeros and extreme codes."""
    rng = np.random.default_rng(3)
    path, t = _table_file(tmp_path, suffix, rng, big)
    dp = parse(f"lut:{path},acc_bits=20")
    assert K.plan(dp).path == "table"
    for kind, (m, k, n) in (("random", (600, 40, 6)), ("extreme", (7, 300, 9))):
        X, W = _codes(dp, "x", (m, k), rng, kind), _codes(dp, "w", (k, n), rng, kind)
        assert np.array_equal(K.matmul(dp, X, W), dp.matmul_definition(X, W))


def test_table_of_a_family_on_the_table_path_matches_its_blas_path(tmp_path):
    """The same multiplier as a lut table (table kernel) and as approx: (BLAS terms)."""
    p = tmp_path / "bam.npy"
    np.save(p, approx.table("mul-bam", bits=8, vbl=6, hbl=1))
    rng = np.random.default_rng(4)
    X, W = rng.integers(-128, 128, (40, 200)), rng.integers(-128, 128, (200, 11))
    assert np.array_equal(K.matmul(f"lut:{p}", X, W), K.matmul("approx:mul-bam,vbl=6,hbl=1", X, W))


def test_input_dtypes_do_not_change_results():
    rng = np.random.default_rng(5)
    X, W = rng.integers(-128, 128, (20, 70)), rng.integers(-128, 128, (70, 6))
    for spec in ("int8", "approx:mul-trunc,k=5", "approx:mul-mitchell"):
        ref = K.matmul(spec, X, W)
        assert np.array_equal(K.matmul(spec, X.astype(np.int8), W.astype(np.int8)), ref)
        assert np.array_equal(K.matmul(spec, X.astype(np.int16), W.astype(np.int32)), ref)


def test_fp32_is_float32_matmul():
    rng = np.random.default_rng(6)
    X, W = rng.standard_normal((5, 9)).astype(np.float32), rng.standard_normal((9, 3)).astype(np.float32)
    got = K.matmul("fp32", X, W)
    assert got.dtype == np.float32 and np.allclose(got, X @ W, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("spec", ["int8,acc_bits=18", "mfmac,exp_bits=2", "approx:mul-drum,k=3",
                                  "approx:mul-mitchell", "asm,alphabet=1/3"])
@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), (3, 2)])
def test_conv2d_equals_direct_loop(spec, stride, padding):
    dp = parse(spec)
    rng = np.random.default_rng(7)
    X = _codes(dp, "x", (2, 3, 9, 8), rng)
    W = _codes(dp, "w", (4, 3, 3, 2), rng)
    got = K.conv2d(dp, X, W, stride=stride, padding=padding)
    want = K.conv2d_definition(dp, X, W, stride=stride, padding=padding)
    assert got.shape == want.shape == (2, 4, (9 + 2 * padding - 3) // stride + 1, (8 + 2 * padding - 2) // stride + 1)
    assert np.array_equal(got, want)


def test_conv2d_definition_is_the_product_loop():
    """The loop definition itself on one hand-checked output (int8: plain products)."""
    X = np.arange(1 * 1 * 3 * 3).reshape(1, 1, 3, 3) - 4
    W = np.array([[[[1, -2], [3, 4]]]])
    y = K.conv2d_definition("int8", X, W)
    assert y[0, 0, 0, 0] == (-4) * 1 + (-3) * -2 + (-1) * 3 + 0 * 4


@pytest.mark.parametrize("args,msg", [
    (dict(X=np.zeros((2, 3)), W=np.zeros((4, 2))), "matmul: X must be M x K and W K x N, got (2, 3) and (4, 2)"),
])
def test_shape_errors(args, msg):
    with pytest.raises(ValueError) as e:
        K.matmul("int8", args["X"].astype(int), args["W"].astype(int))
    assert str(e.value) == msg


def test_conv2d_errors():
    X, W = np.zeros((1, 2, 4, 4), int), np.zeros((3, 2, 3, 3), int)
    with pytest.raises(ValueError, match=r"conv2d: stride must be an integer >= 1 or a pair of them, got 0"):
        K.conv2d("int8", X, W, stride=0)
    with pytest.raises(ValueError, match=r"conv2d: X must be N x C x H x W and W Cout x C/groups x kh x kw"):
        K.conv2d("int8", X, np.zeros((3, 1, 3, 3), int))
    with pytest.raises(ValueError, match=r"conv2d: kernel 3x3 does not fit a 2x2 input with padding 0"):
        K.conv2d("int8", np.zeros((1, 2, 2, 2), int), W)


# ---- torch tensors on any device, batched products, grouped / dilated convolutions ----------
import torch  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]
TORCH_SPECS = ["int8,acc_bits=18", "asm,alphabet=1/3", "mfmac", "mfmac,exp_bits=5", "mfmac,exp_bits=4,acc_bits=31", "approx:mul-drum,k=3",
               "approx:mul-trunc,k=3", "approx:mul-mitchell", "approx:mul-bam", "approx:mul-mitchell,frac_bits=1,acc_bits=17"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spec", TORCH_SPECS)
def test_torch_tensors_on_device_equal_definition(spec, device):
    """Tensors in -> an int64 tensor on the same device, equal to the definition and to the
    NumPy edge; the table path's torch formulation (CUDA's) equals it too on any device."""
    dp = parse(spec)
    rng = np.random.default_rng(8)
    for kind, (m, k, n) in (("random", (9, 300, 7)), ("extreme", (4, 1100, 3))):
        X, W = _codes(dp, "x", (m, k), rng, kind), _codes(dp, "w", (k, n), rng, kind)
        want = dp.matmul_definition(X, W)
        Xt, Wt = torch.from_numpy(X).to(device), torch.from_numpy(W).to(device)
        got = K.matmul(dp, Xt, Wt)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.int64 and got.device.type == device
        assert np.array_equal(got.cpu().numpy(), want), (spec, kind)
        assert np.array_equal(K.matmul(dp, X, W), want)                       # NumPy in, NumPy out
        if K.plan(dp).path == "table":
            assert np.array_equal(K.matmul(dp, Xt, Wt, table_backend="torch").cpu().numpy(), want)
        small = Xt.to(torch.int16 if dp.kind == "asm" else torch.int8), Wt.to(torch.int16)
        assert torch.equal(K.matmul(dp, *small), got)                          # narrow code dtypes


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spec", ["int8", "mfmac,exp_bits=2,acc_bits=8", "approx:mul-drum", "approx:mul-mitchell",
                                  "asm,alphabet=1/3/5/7,acc_bits=18"])
def test_bmm_is_a_loop_of_definitions(spec, device):
    dp = parse(spec)
    rng = np.random.default_rng(9)
    A = _codes(dp, "x", (2, 3, 5, 40), rng)
    B = _codes(dp, "w", (2, 3, 40, 6), rng)
    for backend in (("auto", "torch") if K.plan(dp).path == "table" else ("auto",)):
        got = K.bmm(dp, torch.from_numpy(A).to(device), torch.from_numpy(B).to(device), table_backend=backend)
        assert got.shape == (2, 3, 5, 6) and got.device.type == device
        for i in range(2):
            for j in range(3):
                assert np.array_equal(got[i, j].cpu().numpy(), dp.matmul_definition(A[i, j], B[i, j]))
    # broadcast batch dims: one B for every batch entry of A
    got = K.bmm(dp, A, B[0, :1])
    assert got.shape == (2, 3, 5, 6) and np.array_equal(got[1, 2], dp.matmul_definition(A[1, 2], B[0, 0]))


def test_bmm_errors():
    with pytest.raises(ValueError, match=r"bmm: A must be \(\.\.\., M, K\) and B \(\.\.\., K, N\), got \(3,\) and \(3, 2\)"):
        K.bmm("int8", np.zeros(3, int), np.zeros((3, 2), int))
    with pytest.raises(ValueError, match=r"bmm: batch dims \(2,\) and \(3,\) do not broadcast"):
        K.bmm("int8", np.zeros((2, 4, 3), int), np.zeros((3, 3, 2), int))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spec", ["int8,acc_bits=18", "mfmac", "approx:mul-mitchell", "asm,alphabet=1/3"])
@pytest.mark.parametrize("conv", [dict(groups=2), dict(groups=6), dict(dilation=2, padding=2),
                                  dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=3)])
def test_grouped_depthwise_dilated_conv_equal_definition(spec, conv, device):
    """Grouped, depthwise (groups = C = 6, Cout = 12: a multiplier of 2), dilated and
    per-axis stride / padding / dilation, on tensors, against the loop definition."""
    dp = parse(spec)
    rng = np.random.default_rng(10)
    g = conv.get("groups", 1)
    X = _codes(dp, "x", (2, 6, 9, 8), rng)
    W = _codes(dp, "w", (12, 6 // g, 3, 2), rng)
    want = K.conv2d_definition(dp, X, W, **conv)
    got = K.conv2d(dp, torch.from_numpy(X).to(device), torch.from_numpy(W).to(device), **conv)
    assert got.device.type == device and np.array_equal(got.cpu().numpy(), want)
    assert np.array_equal(K.conv2d(dp, X, W, **conv), want)
    if K.plan(dp).path == "table":
        assert np.array_equal(K.conv2d(dp, torch.from_numpy(X).to(device), torch.from_numpy(W).to(device),
                                       table_backend="torch", **conv).cpu().numpy(), want)


def test_conv2d_definition_groups_and_dilation_by_hand():
    """The definition itself: a depthwise 2-channel kernel with dilation 2 on one output."""
    X = np.arange(2 * 5 * 5).reshape(1, 2, 5, 5) - 20
    W = np.array([[[[1, -2], [3, 4]]], [[[-1, 0], [2, 5]]]])
    y = K.conv2d_definition("int8", X, W, dilation=2, groups=2)
    c0, c1 = X[0, 0], X[0, 1]
    assert y.shape == (1, 2, 3, 3)
    assert y[0, 0, 0, 0] == c0[0, 0] * 1 + c0[0, 2] * -2 + c0[2, 0] * 3 + c0[2, 2] * 4
    assert y[0, 1, 1, 2] == c1[1, 2] * -1 + c1[1, 4] * 0 + c1[3, 2] * 2 + c1[3, 4] * 5
    # and the float conv agrees on int8 (exact products, no wrap at these sizes)
    ref = torch.nn.functional.conv2d(torch.tensor(X, dtype=torch.float64), torch.tensor(W, dtype=torch.float64),
                                     dilation=2, groups=2)
    assert np.array_equal(y, ref.numpy().astype(np.int64))


def test_conv_argument_errors():
    X, W = np.zeros((1, 4, 6, 6), int), np.zeros((4, 2, 3, 3), int)
    with pytest.raises(ValueError, match=r"conv2d: groups must be an integer >= 1, got 0"):
        K.conv2d("int8", X, W, groups=0)
    with pytest.raises(ValueError, match=r"W Cout x C/groups x kh x kw \(Cout divisible by groups=3\)"):
        K.conv2d("int8", X, W, groups=3)
    with pytest.raises(ValueError, match=r"conv2d: dilation must be an integer >= 1 or a pair of them, got \(1, 0\)"):
        K.conv2d("int8", X, W, groups=2, dilation=(1, 0))
    with pytest.raises(ValueError, match=r"kernel 3x3 does not fit a 6x6 input with padding 0 and dilation \(3, 3\)"):
        K.conv2d("int8", X, W, groups=2, dilation=3)


def test_operands_on_different_devices_refused():
    X = torch.zeros((2, 3), dtype=torch.int64)
    W = torch.zeros((3, 2), dtype=torch.int64, device="meta")
    with pytest.raises(ValueError, match="operands on different devices: X on cpu, W on meta"):
        K.matmul("int8", X, W)


def test_tf32_stays_off():
    """The float products must be IEEE float32: TF32 (cuBLAS, cuDNN) is off after import and a
    kernel call turns it off again if something turned it on."""
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert torch.get_float32_matmul_precision() == "highest"
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    try:
        K.matmul("int8", torch.ones((2, 3), dtype=torch.int8), torch.ones((3, 2), dtype=torch.int8))
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        K.exact_floats()
