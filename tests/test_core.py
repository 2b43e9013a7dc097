"""The shared inverse-CDF sampler: exact frequencies on a uniform grid, zero weights never hit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectheory import _core


@pytest.mark.parametrize("V,seed", [(1, 0), (3, 1), (256, 2), (257, 3), (1000, 4), (5000, 5)])
def test_sample_index_grid_frequencies(V, seed):
    """On the grid u = (i + 1/2)/N the draw is deterministic: each index's share of the grid
    must equal w_i / sum(w) to within 2/N, and no zero-weight index may appear."""
    rng = np.random.default_rng(seed)
    w = rng.exponential(size=V) * (rng.random(V) < 0.7)
    if w.sum() == 0:
        w[-1] = 1.0
    N = 200_000
    u = (np.arange(N) + 0.5) / N
    idx = np.asarray(jax.jit(jax.vmap(_core.sample_index, in_axes=(0, None)))(u, w))
    freq = np.bincount(idx, minlength=V) / N
    assert np.all(freq[w == 0] == 0)
    np.testing.assert_allclose(freq, w / w.sum(), atol=2.0 / N)
    # agrees with the plain cumsum search almost everywhere (it may differ only by rounding)
    naive = np.searchsorted(np.cumsum(w), u * w.sum(), side="right")
    assert np.mean(idx == np.minimum(naive, V - 1)) > 0.999


def test_sample_index_extremes():
    w = jnp.array([0.0, 0.3, 0.0, 0.7, 0.0])
    assert int(_core.sample_index(jnp.array(0.0), w)) == 1
    assert int(_core.sample_index(jnp.array(1 - 2**-53), w)) == 3
    assert int(_core.sample_index(jnp.float32(1 - 2**-24), w.astype(jnp.float32))) == 3
    w = jnp.zeros(600).at[599].set(1e-30)
    assert int(_core.sample_index(jnp.array(0.999), w)) == 599


def test_sample_index_flags_weights_without_positive_finite_total():
    """No positive weight, a NaN or an inf weight, or a uniform outside [0, 1): the flag -1,
    eagerly and under jit (one compilation for all rows)."""
    W = jnp.array([[0.0, 0.0, 0.0], [0.2, jnp.nan, 0.8], [0.2, jnp.inf, 0.8], [0.5, 0.5, 0.0],
                   [0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 1e-30, 0.0]])
    U = jnp.array([0.5, 0.5, 0.5, jnp.nan, 1.0, -0.1, 0.999])
    want = [-1, -1, -1, -1, -1, -1, 1]
    assert np.asarray(jax.jit(jax.vmap(_core.sample_index))(U, W)).tolist() == want
    assert [int(_core.sample_index(u, w)) for u, w in zip(U, W)] == want


def test_take_reads_out_of_range_ids_as_zero_mass():
    x = jnp.array([0.1, 0.2, 0.7])
    d = jnp.array([0, 2, -1, 3, -4, 100])
    np.testing.assert_array_equal(jax.jit(_core.take)(x, d), [0.1, 0.7, 0.0, 0.0, 0.0, 0.0])
    rows = jnp.array([[0.1, 0.9], [0.4, 0.6], [0.3, 0.7]])
    np.testing.assert_array_equal(_core.take_rows(rows, jnp.array([1, -1, 2])), [0.9, 0.0, 0.0])
    ids = _core.scatter_ids(jnp.array([-1, 1, 5]), 3)
    np.testing.assert_array_equal(jnp.zeros(3).at[ids].add(1.0, mode="drop"), [0.0, 1.0, 0.0])


def test_residual_weights_keep_nan():
    """The fallback to p is for a residual of zero mass only; a NaN residual stays NaN."""
    w = _core.residual_weights(jnp.array([0.5, 0.5]), jnp.array([jnp.nan, 0.5]))
    assert np.isnan(np.asarray(w)).any()
    np.testing.assert_array_equal(_core.residual_weights(jnp.array([0.5, 0.5]), jnp.array([0.5, 0.5])), [0.5, 0.5])
