"""Kernel maths vs independent float64 references, and dense vs event agreement."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import correlate

from snnsim.kernels import (
    DEFAULT_EVENT_THRESHOLD,
    avgpool2d,
    conv2d_dense,
    conv2d_event,
    conv_out_size,
    count_nonzero,
    density,
    event_map,
    is_binary,
    linear_dense,
    linear_event,
    maxpool2d,
    prepare_conv_event,
    prepare_linear_event,
    upsample_nearest2d,
)

NOBIAS = np.zeros(0, np.float32)
HYP = settings(max_examples=60, deadline=None, derandomize=True)


# ----------------------------------------------------------------- references (float64)


def ref_linear(x, w, b):
    out = np.einsum("bi,oi->bo", x.astype(np.float64), w.astype(np.float64))
    return out + b.astype(np.float64) if b.size else out


def ref_conv(x, w, b, sh, sw, ph, pw, groups):
    """Per (batch, out-channel, in-channel of the group) scipy 'valid' correlation
    on an explicitly zero-padded input, then strided slicing."""
    B, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    Og = O // groups
    xp = np.zeros((B, C, H + 2 * ph, W + 2 * pw), np.float64)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    HO = (H + 2 * ph - KH) // sh + 1
    WO = (W + 2 * pw - KW) // sw + 1
    out = np.zeros((B, O, HO, WO), np.float64)
    for bi in range(B):
        for o in range(O):
            g = o // Og
            for ci in range(Cg):
                full = correlate(xp[bi, g * Cg + ci], w[o, ci].astype(np.float64), mode="valid")
                out[bi, o] += full[::sh, ::sw][:HO, :WO]
            if b.size:
                out[bi, o] += b[o]
    return out


def ref_pool(x, kh, kw, sh, sw, ph, pw, kind):
    B, C, H, W = x.shape
    HO = (H + 2 * ph - kh) // sh + 1
    WO = (W + 2 * pw - kw) // sw + 1
    out = np.zeros((B, C, HO, WO), np.float64)
    for bi in range(B):
        for c in range(C):
            for oi in range(HO):
                for oj in range(WO):
                    vals = []
                    for a in range(kh):
                        for d in range(kw):
                            i, j = oi * sh - ph + a, oj * sw - pw + d
                            inside = 0 <= i < H and 0 <= j < W
                            if kind == "avg":
                                vals.append(float(x[bi, c, i, j]) if inside else 0.0)
                            elif inside:
                                vals.append(float(x[bi, c, i, j]))
                    out[bi, c, oi, oj] = sum(vals) / (kh * kw) if kind == "avg" else max(vals, default=-np.inf)
    return out


def tol(xabs_ref):
    """atol proportional to the magnitude of the terms summed (float32 round-off)."""
    return 1e-5 * max(1.0, float(np.max(xabs_ref, initial=0.0)))


def check_conv(x, w, b, sh, sw, ph, pw, groups):
    ref = ref_conv(x, w, b, sh, sw, ph, pw, groups)
    scale = ref_conv(np.abs(x), np.abs(w), np.abs(b), sh, sw, ph, pw, groups)
    O, _, KH, KW = w.shape
    dense = conv2d_dense(x, w, b, sh, sw, ph, pw, groups)
    event = conv2d_event(x, prepare_conv_event(w, groups), b, O, KH, KW, sh, sw, ph, pw, groups)
    for out in (dense, event):
        assert out.dtype == np.float32 and out.flags.c_contiguous
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=tol(scale))
    np.testing.assert_allclose(event, dense, rtol=1e-5, atol=tol(scale))
    return dense, event


# ----------------------------------------------------------------- input generators


def make_input(rng, shape, mode, p):
    if mode == "zeros":
        return np.zeros(shape, np.float32)
    if mode == "ones":
        return np.ones(shape, np.float32)
    mask = rng.random(shape) < p
    if mode == "binary":
        return mask.astype(np.float32)
    # graded (non-binary, signed) values, e.g. a first layer fed with analog input
    return (mask * rng.uniform(-2.0, 2.0, shape)).astype(np.float32)


modes = st.sampled_from(["zeros", "ones", "binary", "graded"])
densities = st.sampled_from([0.0, 0.01, 0.1, 0.3, 0.7, 1.0])


# ----------------------------------------------------------------- linear


@given(
    B=st.integers(1, 3), I=st.integers(1, 40), O=st.integers(1, 20),
    mode=modes, p=densities, bias=st.booleans(), seed=st.integers(0, 2**16),
)
@HYP
def test_linear_dense_event_vs_einsum(B, I, O, mode, p, bias, seed):
    rng = np.random.default_rng(seed)
    x = make_input(rng, (B, I), mode, p)
    w = rng.standard_normal((O, I)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32) if bias else NOBIAS
    ref = ref_linear(x, w, b)
    scale = ref_linear(np.abs(x), np.abs(w), np.abs(b))
    dense = linear_dense(x, w, b)
    event = linear_event(x, prepare_linear_event(w), b)
    for out in (dense, event):
        assert out.dtype == np.float32 and out.shape == (B, O) and out.flags.c_contiguous
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=tol(scale))
    np.testing.assert_allclose(event, dense, rtol=1e-5, atol=tol(scale))


def test_prepare_linear_event_layout():
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    wt = prepare_linear_event(w)
    assert wt.shape == (4, 3) and wt.flags.c_contiguous
    np.testing.assert_array_equal(wt, w.T)


@pytest.mark.usefixtures("always_split")
def test_linear_large_batch_parallel_path_is_deterministic():
    rng = np.random.default_rng(0)
    x = make_input(rng, (64, 400), "binary", 0.1)
    w = rng.standard_normal((50, 400)).astype(np.float32)
    b = rng.standard_normal(50).astype(np.float32)
    wt = prepare_linear_event(w)
    e1 = linear_event(x, wt, b)
    # a batch of one takes the serial path; the per-output sum order is the same
    e2 = np.concatenate([linear_event(x[r:r + 1], wt, b) for r in range(64)])
    np.testing.assert_array_equal(e1, e2)
    np.testing.assert_allclose(linear_dense(x, w, b), ref_linear(x, w, b), rtol=1e-5, atol=1e-4)


# ----------------------------------------------------------------- conv


@st.composite
def conv_cases(draw):
    B = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["plain", "grouped", "depthwise", "multiplier"]))
    if kind == "plain":
        groups, Cg, Og = 1, draw(st.integers(1, 4)), draw(st.integers(1, 5))
    elif kind == "grouped":
        groups, Cg, Og = draw(st.integers(2, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    elif kind == "depthwise":  # groups == C == O
        groups, Cg, Og = draw(st.integers(1, 6)), 1, 1
    else:  # depthwise with channel multiplier (Cg == 1, Og > 1)
        groups, Cg, Og = draw(st.integers(1, 4)), 1, draw(st.integers(2, 3))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = max(1, kh - 2 * ph) + draw(st.integers(0, 6))
    W = max(1, kw - 2 * pw) + draw(st.integers(0, 6))
    return B, groups, Cg, Og, kh, kw, sh, sw, ph, pw, H, W


@given(case=conv_cases(), mode=modes, p=densities, bias=st.booleans(), seed=st.integers(0, 2**16))
@settings(max_examples=150, deadline=None, derandomize=True)
def test_conv_dense_event_vs_scipy(case, mode, p, bias, seed):
    B, groups, Cg, Og, kh, kw, sh, sw, ph, pw, H, W = case
    rng = np.random.default_rng(seed)
    C, O = Cg * groups, Og * groups
    x = make_input(rng, (B, C, H, W), mode, p)
    w = rng.standard_normal((O, Cg, kh, kw)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32) if bias else NOBIAS
    check_conv(x, w, b, sh, sw, ph, pw, groups)


def test_conv_out_size():
    assert conv_out_size(14, 3, 1, 1) == 14
    assert conv_out_size(32, 3, 2, 1) == 16
    assert conv_out_size(5, 5, 1, 0) == 1
    assert conv_out_size(7, 2, 3, 0) == 2  # floor((7 - 2) / 3) + 1


def test_prepare_conv_event_layout():
    rng = np.random.default_rng(3)
    groups, Cg, Og = 3, 2, 4
    w = rng.standard_normal((groups * Og, Cg, 3, 2)).astype(np.float32)
    wev = prepare_conv_event(w, groups)
    assert wev.shape == (groups * Cg, 3, 2, Og) and wev.flags.c_contiguous
    for c in range(groups * Cg):
        g = c // Cg
        # [KH, KW, Og] with the kernel columns reversed
        expect = np.transpose(w[g * Og:(g + 1) * Og, c - g * Cg], (1, 2, 0))[:, ::-1, :]
        np.testing.assert_array_equal(wev[c], expect)


@pytest.mark.parametrize(
    "B,C,O,groups,H,W,k,s,p",
    [
        (2, 3, 4, 1, 5, 5, 5, 1, 0),   # kernel == input: output 1x1
        (1, 2, 3, 1, 4, 6, 3, 3, 0),   # stride leaves output 1 x 2
        (2, 2, 2, 2, 1, 1, 3, 1, 1),   # 1x1 input, padding only ring
        (1, 4, 4, 4, 3, 3, 3, 2, 1),   # depthwise, output 2x2
        (3, 1, 1, 1, 2, 7, 2, 2, 1),
    ],
)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.usefixtures("one_group_path")
def test_conv_edge_cases(B, C, O, groups, H, W, k, s, p, bias):
    rng = np.random.default_rng(5)
    x = make_input(rng, (B, C, H, W), "graded", 0.6)
    w = rng.standard_normal((O, C // groups, k, k)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32) if bias else NOBIAS
    check_conv(x, w, b, s, s, p, p, groups)


@pytest.fixture(params=["tiles", "blas"])
def one_group_path(request, monkeypatch):
    """Run a dense conv test on both one-group paths: the register tiles (kernels/conv_tiled.py, where Numba
    compiles AVX-512) and im2col + OpenBLAS's sgemm (everywhere else)."""
    from snnsim.kernels import gemm

    if request.param == "tiles" and not gemm.USE:
        pytest.skip("the register tile is used only where Numba compiles AVX-512")
    monkeypatch.setattr(gemm, "USE", request.param == "tiles")


@pytest.fixture
def always_split(monkeypatch):
    """The kernels split between threads from the smallest size (the thresholds are read in Python)."""
    from snnsim.kernels import conv, conv_event, linear, pool

    for module, names in ((conv, ("_PAR_MIN_WORK", "_GEMM_PAR_MIN_WORK")), (conv_event, ("_EVENT_PAR_MIN_OUT",)),
                          (linear, ("_PAR_MIN_WORK",)), (pool, ("_PAR_MIN_WORK",))):
        for name in names:
            monkeypatch.setattr(module, name, 0)


@pytest.mark.parametrize(
    "B,C,O,groups,H,k,s,p",
    [
        (1, 8, 64, 1, 24, 3, 1, 1),    # B=1: event kernel splits output rows across threads
        (3, 8, 16, 1, 75, 3, 1, 1),    # im2col chunks of 2 images + a partial chunk of 1
        (2, 32, 8, 1, 48, 3, 1, 1),    # im2col buffer holds one image: sgemm into the output
        (2, 16, 16, 16, 20, 5, 1, 2),  # depthwise, split direct loops
        (1, 32, 32, 32, 24, 3, 1, 1),  # depthwise B=1: event kernel splits the groups across threads
        (4, 8, 16, 2, 12, 3, 2, 1),    # grouped, split over images in the event kernel
        (4, 16, 32, 1, 32, 3, 1, 1),   # sgemm path: images split between threads, bands of rows
        (3, 8, 6, 2, 5, 1, 1, 0),      # grouped 1x1: sgemm on the image itself
    ],
)
@pytest.mark.usefixtures("always_split", "one_group_path")
def test_conv_parallel_and_chunked_paths(B, C, O, groups, H, k, s, p):
    rng = np.random.default_rng(7)
    x = make_input(rng, (B, C, H, H), "binary", 0.15)
    w = rng.standard_normal((O, C // groups, k, k)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    dense, event = check_conv(x, w, b, s, s, p, p, groups)
    wev = prepare_conv_event(w, groups)
    # Reproducible float32: each output's event sum has a fixed order, whichever
    # path (serial, parallel over images, split channels) computed it.
    per_image = np.concatenate(
        [conv2d_event(x[i:i + 1], wev, b, O, k, k, s, s, p, p, groups) for i in range(B)]
    )
    np.testing.assert_array_equal(event, per_image)
    np.testing.assert_array_equal(conv2d_dense(x, w, b, s, s, p, p, groups), dense)


def test_conv_rectangular_kernel_stride_padding():
    rng = np.random.default_rng(11)
    x = make_input(rng, (2, 4, 9, 7), "graded", 0.4)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    check_conv(x, w, b, 2, 3, 1, 0, 2)


def test_kernels_do_not_modify_inputs():
    rng = np.random.default_rng(2)
    x = make_input(rng, (2, 4, 6, 6), "binary", 0.3)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    copies = [a.copy() for a in (x, w, b)]
    conv2d_dense(x, w, b, 1, 1, 1, 1, 2)
    conv2d_event(x, prepare_conv_event(w, 2), b, 4, 3, 3, 1, 1, 1, 1, 2)
    maxpool2d(x, 2, 2, 2, 2, 0, 0)
    for a, c in zip((x, w, b), copies):
        np.testing.assert_array_equal(a, c)


# ----------------------------------------------------------------- pooling / upsampling


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    # torch requires padding <= kernel / 2
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    H = max(1, kh - 2 * ph) + draw(st.integers(0, 6))
    W = max(1, kw - 2 * pw) + draw(st.integers(0, 6))
    return draw(st.integers(1, 3)), draw(st.integers(1, 3)), H, W, kh, kw, sh, sw, ph, pw


@given(case=pool_cases(), seed=st.integers(0, 2**16))
@HYP
def test_pools_vs_loop_reference(case, seed):
    B, C, H, W, kh, kw, sh, sw, ph, pw = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, C, H, W)).astype(np.float32)
    avg = avgpool2d(x, kh, kw, sh, sw, ph, pw)
    mx = maxpool2d(x, kh, kw, sh, sw, ph, pw)
    np.testing.assert_allclose(avg, ref_pool(x, kh, kw, sh, sw, ph, pw, "avg"), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mx, ref_pool(x, kh, kw, sh, sw, ph, pw, "max").astype(np.float32))
    assert avg.dtype == np.float32 and mx.dtype == np.float32


@pytest.mark.parametrize("H,W", [(28, 28), (7, 9), (2, 2)])
def test_pool_2x2_stride_2_equals_torch_bit_for_bit(H, W):
    """The 2x2 / stride 2 / no padding path (most SNN pooling) reads windows straight from two rows; sums in
    the generic order give torch's average and maximum exactly, odd sizes dropping the last row/column."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, H, W)).astype(np.float32)
    x[x < -1] = -0.0
    xt = torch.from_numpy(x)
    mx = maxpool2d(x, 2, 2, 2, 2, 0, 0)
    np.testing.assert_array_equal(mx, torch.nn.functional.max_pool2d(xt, 2).numpy())
    avg = avgpool2d(x, 2, 2, 2, 2, 0, 0)
    ref = x[:, :, :H // 2 * 2, :W // 2 * 2].astype(np.float64)
    ref = ref.reshape(3, 4, H // 2, 2, W // 2, 2).sum(axis=(3, 5)) / 4
    np.testing.assert_allclose(avg, ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(avg, torch.nn.functional.avg_pool2d(xt, 2).numpy())


@pytest.mark.usefixtures("always_split")
def test_pools_large_parallel_path():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 16, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(avgpool2d(x, 2, 2, 2, 2, 0, 0), x.reshape(4, 16, 16, 2, 16, 2).mean(axis=(3, 5)),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(maxpool2d(x, 2, 2, 2, 2, 0, 0), x.reshape(4, 16, 16, 2, 16, 2).max(axis=(3, 5)))


def test_maxpool_padding_is_minus_inf():
    x = -np.ones((1, 1, 2, 2), np.float32)  # a zero pad would win; -inf pad must not
    np.testing.assert_array_equal(maxpool2d(x, 2, 2, 1, 1, 1, 1), -np.ones((1, 1, 3, 3), np.float32))


def test_avgpool_counts_padding():
    x = np.ones((1, 1, 2, 2), np.float32)
    out = avgpool2d(x, 2, 2, 1, 1, 1, 1)
    np.testing.assert_allclose(out[0, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])


@given(B=st.integers(1, 2), C=st.integers(1, 3), H=st.integers(1, 5), W=st.integers(1, 5),
       scale=st.integers(1, 4), seed=st.integers(0, 2**16))
@HYP
def test_upsample_vs_repeat(B, C, H, W, scale, seed):
    x = np.random.default_rng(seed).standard_normal((B, C, H, W)).astype(np.float32)
    np.testing.assert_array_equal(upsample_nearest2d(x, scale), np.repeat(np.repeat(x, scale, axis=2), scale, axis=3))


def test_against_torch_if_available():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(9)
    x = make_input(rng, (2, 6, 11, 10), "graded", 0.5)
    w = rng.standard_normal((9, 2, 3, 4)).astype(np.float32)
    b = rng.standard_normal(9).astype(np.float32)
    tx, tw, tb = map(torch.from_numpy, (x, w, b))
    ref = F.conv2d(tx, tw, tb, (2, 1), (1, 2), 1, 3).numpy()
    np.testing.assert_allclose(conv2d_dense(x, w, b, 2, 1, 1, 2, 3), ref, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(conv2d_event(x, prepare_conv_event(w, 3), b, 9, 3, 4, 2, 1, 1, 2, 3), ref,
                               rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(avgpool2d(x, 3, 2, 2, 2, 1, 1), F.avg_pool2d(tx, (3, 2), 2, (1, 1)).numpy(),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(maxpool2d(x, 3, 3, 2, 1, 1, 0), F.max_pool2d(tx, 3, (2, 1), (1, 0)).numpy())
    np.testing.assert_array_equal(upsample_nearest2d(x, 2), F.interpolate(tx, scale_factor=2, mode="nearest").numpy())


@pytest.mark.parametrize("limits", [(1 << 18, 1 << 18), (1500, 1500), (40, 40)],
                         ids=["default", "several-images-per-sgemm", "one-row-bands"])
@pytest.mark.parametrize("B,C,O,groups,H,W,kh,kw,ph,pw", [
    (5, 6, 4, 1, 7, 9, 3, 3, 1, 1),      # odd, non-square image
    (3, 4, 6, 2, 6, 5, 3, 2, 2, 0),      # groups, rectangular kernel, padding > kernel // 2 in one axis only
    (2, 3, 5, 1, 5, 4, 5, 3, 0, 1),      # kernel as tall as the image
    (4, 8, 8, 4, 9, 9, 1, 1, 1, 1),      # 1x1 with padding (not the pointwise shortcut)
])
@pytest.mark.usefixtures("one_group_path")
def test_conv_stride1_wide_path_matches_torch(monkeypatch, limits, B, C, O, groups, H, W, kh, kw, ph, pw):
    """Stride-1 convs take the wide im2col (padded copy, whole padded rows, extra columns dropped): against
    torch's conv2d with chunks of several images, single images in bands of rows, and both split between
    threads."""
    torch = pytest.importorskip("torch")
    from snnsim.kernels import conv

    monkeypatch.setattr(conv, "_WIDE_MAX_ELEMS", limits[0])
    monkeypatch.setattr(conv, "_WIDE_BAND_ELEMS", limits[1])
    rng = np.random.default_rng(B * 100 + H)
    x = make_input(rng, (B, C, H, W), "graded", 0.7)
    w = rng.standard_normal((O, C // groups, kh, kw)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    ref = torch.nn.functional.conv2d(*map(torch.from_numpy, (x, w, b)), 1, (ph, pw), 1, groups).numpy()
    out = conv2d_dense(x, w, b, 1, 1, ph, pw, groups)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)
    monkeypatch.setattr(conv, "_GEMM_PAR_MIN_WORK", 0)
    np.testing.assert_allclose(conv2d_dense(x, w, b, 1, 1, ph, pw, groups), ref, rtol=1e-5, atol=1e-4)
    # several timesteps side by side (batch = images per step): the same bits as each step alone
    parts = (x, np.ascontiguousarray(x[::-1]), 2 * x)
    steps = np.concatenate(parts)
    alone = np.concatenate([conv2d_dense(s, w, b, 1, 1, ph, pw, groups) for s in parts])
    np.testing.assert_array_equal(conv2d_dense(steps, w, b, 1, 1, ph, pw, groups, B), alone)


# ----------------------------------------------------------------- event statistics


@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), mode=modes, p=densities,
       seed=st.integers(0, 2**16))
@HYP
def test_event_helpers(shape, mode, p, seed):
    x = make_input(np.random.default_rng(seed), tuple(shape), mode, p)
    n = count_nonzero(x)
    assert n == np.count_nonzero(x) and isinstance(n, (int, np.integer))
    assert density(x) == pytest.approx(np.count_nonzero(x) / x.size)
    assert is_binary(x) == bool(np.all((x == 0) | (x == 1)))
    em = event_map(x)
    assert em.dtype == np.float32 and em.shape == x.shape[1:]
    np.testing.assert_array_equal(em, (x != 0).sum(axis=0))


def test_event_helpers_fixed():
    x = np.array([[0, 1, 0.5], [0, 1, 0]], np.float32)
    assert count_nonzero(x) == 3
    assert density(x) == pytest.approx(0.5)
    assert not is_binary(x)
    assert is_binary(np.array([[0, 1], [1, 1]], np.float32))
    np.testing.assert_array_equal(event_map(x), [0, 2, 1])
    empty = np.zeros((0, 2, 3), np.float32)  # zero batch
    assert count_nonzero(empty) == 0 and density(empty) == 0.0 and is_binary(empty)
    np.testing.assert_array_equal(event_map(empty), np.zeros((2, 3), np.float32))


def test_default_threshold_is_a_fraction():
    assert isinstance(DEFAULT_EVENT_THRESHOLD, float) and 0.0 < DEFAULT_EVENT_THRESHOLD < 1.0


@pytest.mark.parametrize("groups,O", [(1, 16), (8, 8)])
def test_conv_event_silent_images_give_the_bias(groups, O):
    # an image without events skips the scatter and writes the bias; the others scatter as usual
    rng = np.random.default_rng(12)
    x = make_input(rng, (3, 8, 10, 10), "binary", 0.2)
    x[1] = 0.0
    w = rng.standard_normal((O, 8 // groups, 3, 3)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    dense, event = check_conv(x, w, b, 1, 1, 1, 1, groups)
    np.testing.assert_array_equal(event[1], np.broadcast_to(b[:, None, None], event[1].shape))


# ----------------------------------------------------------------- event conv: exact summation order

def ordered_conv_f32(x, w, b, sh, sw, ph, pw, groups):
    """The event kernel's arithmetic, written independently: every output summed in float32 from +0, one
    rounded product and one rounded addition per term, in input order (channel, kernel row, kernel column),
    then the bias. Zero terms (padding, silent inputs) leave a sum that starts at +0 unchanged, so the event
    kernel, which skips them, must match this bit for bit."""
    B, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    Og = O // groups
    HO = (H + 2 * ph - KH) // sh + 1
    WO = (W + 2 * pw - KW) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((B, O, HO, WO), np.float32)
    for g in range(groups):
        for cl in range(Cg):
            for kh in range(KH):
                for kw in range(KW):
                    patch = xp[:, g * Cg + cl, kh:kh + sh * (HO - 1) + 1:sh, kw:kw + sw * (WO - 1) + 1:sw]
                    out[:, g * Og:(g + 1) * Og] += patch[:, None] * w[g * Og:(g + 1) * Og, cl, kh, kw][:, None, None]
    if b.size:
        out += b[:, None, None]
    return out


@pytest.mark.parametrize("B,C,O,groups,H,W,k,s,p,split", [
    (6, 16, 64, 1, 16, 16, 3, 1, 1, False),     # the ResNet block conv's shape: one band per image
    (3, 8, 64, 1, 32, 20, 3, 1, 1, False),      # several bands of output rows per image
    (4, 5, 12, 1, 7, 9, 3, 1, 1, False),        # planes not a multiple of 32, O and pixels not multiples of 8
    (3, 8, 16, 2, 11, 7, 3, 2, 1, True),        # groups, stride 2, images split between threads
    (1, 6, 16, 1, 13, 13, 5, 2, 2, True),       # one image split in two parts of rows
    (4, 8, 8, 8, 10, 10, 3, 1, 1, False),       # depthwise: the planar scatter
])
def test_conv_event_matches_ordered_float32_sum(monkeypatch, B, C, O, groups, H, W, k, s, p, split):
    """Bit for bit against the ordered float32 sum, for binary and graded inputs where some images are silent,
    one holds only -0.0 and the others are sparse; and within float32 round-off of torch's conv2d."""
    import torch

    from snnsim.kernels import conv_event

    if split:
        monkeypatch.setattr(conv_event, "_EVENT_PAR_MIN_OUT", 0)
    rng = np.random.default_rng(B * 100 + H)
    w = rng.standard_normal((O, C // groups, k, k)).astype(np.float32)
    for graded, bias in ((False, True), (True, False)):
        x = (rng.random((B, C, H, W)) < 0.03).astype(np.float32)
        if graded:
            x *= rng.uniform(-3, 3, x.shape).astype(np.float32)
        if B >= 3:
            x[1] = 0.0
            x[2] = -0.0 * (rng.random((C, H, W)) < 0.5)
        b = rng.standard_normal(O).astype(np.float32) if bias else NOBIAS
        got = conv2d_event(x, prepare_conv_event(w, groups), b, O, k, k, s, s, p, p, groups)
        np.testing.assert_array_equal(got.view(np.uint32), ordered_conv_f32(x, w, b, s, s, p, p, groups).view(np.uint32))
        ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b) if bias else None,
                                         s, p, 1, groups).numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)


def test_simd_nonzero_mask_and_transpose():
    """The two vector intrinsics against NumPy: which of 32 entries are nonzero (-0.0 and +0.0 are zero, a
    denormal is not), and an 8 x 8 block transposed out with a bias added while the source block is cleared."""
    from numba import njit

    from snnsim.kernels.simd import nonzero_mask32, transpose8_add_clear

    @njit
    def masks(bits):
        return [nonzero_mask32(bits, 32 * q) for q in range(bits.size // 32)]

    rng = np.random.default_rng(3)
    x = ((rng.random(32 * 9) < 0.3) * rng.standard_normal(32 * 9)).astype(np.float32)
    x[[3, 40]] = -0.0
    x[[5, 77]] = np.float32(1e-45)
    x[64:96] = 0.0
    want = [sum(1 << q for q in range(32) if x[32 * i + q] != 0) for i in range(9)]
    assert masks(x.view(np.uint32)) == want

    @njit
    def transpose(src, dst, b, O, P, ds):
        for o0 in range(0, O, 8):
            for p0 in range(0, P, 8):
                transpose8_add_clear(src, p0 * O + o0, O, dst, o0 * ds + p0, ds, b, o0)

    O, P, ds = 16, 24, 30                  # output rows 30 apart, only the first 24 of each written
    src = rng.standard_normal(P * O).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    dst = np.full(O * ds, 7.0, np.float32)
    want = np.full((O, ds), 7.0, np.float32)
    want[:, :P] = (src.reshape(P, O) + b).T
    transpose(src, dst, b, O, P, ds)
    np.testing.assert_array_equal(dst.reshape(O, ds), want)
    assert not src.any()


@pytest.mark.parametrize("O,HW", [(16, 64), (13, 70), (8, 9), (5, 3)])
def test_channels_last_copy_is_the_transpose(O, HW):
    """Training's channels-last copy of an output gradient (8 x 8 register transposes, simd.transpose8, and the
    edges one by one) is numpy's transpose, the source untouched."""
    from snnsim.train.grads.conv import _channels_last

    src = np.random.default_rng(O * HW).standard_normal(O * HW).astype(np.float32)
    keep = src.copy()
    dst = np.full(O * HW, np.nan, np.float32)
    _channels_last(src, O, HW, dst)
    np.testing.assert_array_equal(dst.reshape(HW, O), keep.reshape(O, HW).T)
    np.testing.assert_array_equal(src, keep)


@pytest.mark.parametrize("B,I,O,split", [(7, 1568, 20, False), (5, 70, 9, True), (1, 31, 16, False)])
def test_linear_event_matches_ordered_float32_sum(monkeypatch, B, I, O, split):
    """Bit for bit against each output summed in float32 from +0 in ascending input order, then the bias
    (zero terms leave such a sum unchanged, so skipping them must not show): silent rows, a row of -0.0 only,
    inputs not a multiple of 32, rows split between threads; and within round-off of torch's linear."""
    import torch

    from snnsim.kernels import linear

    if split:
        monkeypatch.setattr(linear, "_PAR_MIN_WORK", 0)
    rng = np.random.default_rng(B + I)
    w = rng.standard_normal((O, I)).astype(np.float32)
    for graded, bias in ((False, True), (True, False)):
        x = (rng.random((B, I)) < 0.05).astype(np.float32)
        if graded:
            x *= rng.uniform(-3, 3, x.shape).astype(np.float32)
        if B >= 3:
            x[1] = 0.0
            x[2] = -0.0
        b = rng.standard_normal(O).astype(np.float32) if bias else NOBIAS
        want = np.zeros((B, O), np.float32)
        for i in range(I):
            want += x[:, i:i + 1] * w[:, i]
        if bias:
            want += b
        got = linear_event(x, prepare_linear_event(w), b)
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
        ref = torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(w),
                                         torch.from_numpy(b) if bias else None).numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("B,C,mult,H,W,k,s,p", [(2, 5, 1, 16, 16, 3, 1, 1), (1, 3, 2, 7, 9, 3, 1, 2),
                                                (2, 4, 1, 9, 8, 5, 1, 2), (1, 3, 1, 9, 10, 3, 2, 1)])
def test_depthwise_direct_loops_are_the_ordered_float32_sum(B, C, mult, H, W, k, s, p):
    """One input channel per group: every output is float32 bias + w[0,0] x + w[0,1] x + ... in tap order, each
    product and sum rounded to float32 (numpy's float32 arithmetic here), whichever loop computes it (the 3x3
    stride-1 single pass, taps four at a time, the general loops): the same bits."""
    rng = np.random.default_rng(C * 10 + k)
    x = rng.standard_normal((B, C, H, W)).astype(np.float32)
    w = rng.standard_normal((C * mult, 1, k, k)).astype(np.float32)
    b = rng.standard_normal(C * mult).astype(np.float32)
    got = conv2d_dense(x, w, b, s, s, p, p, C)
    xp = np.zeros((B, C, H + 2 * p, W + 2 * p), np.float32)
    xp[:, :, p:p + H, p:p + W] = x
    HO, WO = got.shape[2], got.shape[3]
    want = np.broadcast_to(b[None, :, None, None], got.shape).copy()
    src = np.repeat(xp, mult, axis=1)                                 # output channel o reads channel o // mult
    for kh in range(k):
        for kw in range(k):
            patch = src[:, :, kh:kh + s * (HO - 1) + 1:s, kw:kw + s * (WO - 1) + 1:s]
            want = want + w[None, :, 0, kh, kw, None, None] * patch
    assert want.dtype == np.float32
    np.testing.assert_array_equal(got, want)
