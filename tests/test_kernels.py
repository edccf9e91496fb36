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
    p = K._build_plan(dp, max_terms=99)
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
    assert got.dtype == np.float32 and np.allclose(got, X @ W, rtol=1e-6)


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
    with pytest.raises(ValueError, match=r"conv2d: stride must be an integer >= 1, got 0"):
        K.conv2d("int8", X, W, stride=0)
    with pytest.raises(ValueError, match=r"conv2d: X must be N x C x H x W and W Cout x C x kh x kw"):
        K.conv2d("int8", X, np.zeros((3, 1, 3, 3), int))
    with pytest.raises(ValueError, match=r"conv2d: kernel 3x3 does not fit a 2x2 input with padding 0"):
        K.conv2d("int8", np.zeros((1, 2, 2, 2), int), W)
