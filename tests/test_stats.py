"""kernels/stats.py's one-pass input statistics against NumPy, on inputs spanning several position blocks."""

from __future__ import annotations

import numpy as np

from snnsim.kernels.stats import _BLOCK, steps_stats_samples


def test_steps_stats_samples_match_numpy():
    rng = np.random.default_rng(0)
    T, B, shape = 3, 5, (3, 41, 53)                  # 6519 positions: three blocks and a partial one
    n = int(np.prod(shape))
    assert n > 3 * _BLOCK
    x = (rng.random((T, B) + shape) < 0.1).astype(np.float32)
    x[1, 2, 0, 0, :7] = 0.5                           # one sample with non-binary entries
    x[2, 4] = -0.0                                    # a silent sample of negative zeros
    fanout = rng.integers(1, 700, n).astype(np.int64)
    em = np.full((T,) + shape, 2.0, np.float32)        # counts are added to what is there
    nnz_s = np.ones((T, B), np.int64)
    reach_s = np.zeros((T, B), np.int64)
    nonbinary_s = np.zeros((T, B), bool)
    nnz, binary = steps_stats_samples(x, em, fanout, nnz_s, reach_s, nonbinary_s)
    nz = (x != 0).reshape(T, B, n)
    np.testing.assert_array_equal(nnz, nz.sum(axis=(1, 2)))
    np.testing.assert_array_equal(binary, [True, False, True])
    np.testing.assert_array_equal(nnz_s, 1 + nz.sum(axis=2))
    np.testing.assert_array_equal(reach_s, (nz * fanout).sum(axis=2))
    want_nb = np.zeros((T, B), bool)
    want_nb[1, 2] = True
    np.testing.assert_array_equal(nonbinary_s, want_nb)
    np.testing.assert_array_equal(em.reshape(T, n), 2.0 + nz.sum(axis=1))
