"""The row-free routes of the multi-draft verifiers equal the row-building definitions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectheory import _core
from spectheory.verify import _greedy, _multi, _rsd, _specinfer, _spechub

from _cases import edge_pairs

CASES = [(V, seed, case) for V in (3, 5, 40) for seed in range(4) for case in edge_pairs(V, seed)]


def _pair(V, seed, case):
    p, q = edge_pairs(V, seed)[case]
    return jnp.asarray(p), jnp.asarray(q)


@jax.jit
def _specinfer_pair(p, q, d):
    """(kernel from the thresholds, kernel from the row-building definition)."""
    n = d.shape[0]
    t, Z = _specinfer.specinfer_thresholds(p, q, n)
    a = _core.accept_prob(_core.excess(p[d], t[:n] * q[d]) / Z[:n], q[d])
    K = _multi.sequential_kernel(d, a, _core.normalize(_core.excess(p, t[n] * q)))
    return K, _specinfer.SPECINFER.kernel(p, q, d)


@jax.jit
def _rsd_pair(p, q, d):
    px, qx, t, frozen, pz = _rsd._rsd_thresholds(p, q, d)
    w = _core.excess(pz, t * q).at[d].add(frozen)
    K = _multi.sequential_kernel(d, _core.accept_prob(px, qx), _core.normalize(w))
    return K, _rsd.RSD.kernel(p, q, d)


@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_specinfer_thresholds_give_the_kernel(n):
    for V, seed, case in CASES:
        p, q = _pair(V, seed, case)
        d = jnp.asarray(np.random.default_rng(seed).choice(V, n, p=np.asarray(q)))
        K, want = _specinfer_pair(p, q, d)
        np.testing.assert_allclose(K, want, atol=1e-12, err_msg=case)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_rsd_thresholds_give_the_kernel(n):
    for V, seed, case in CASES:
        p, q = _pair(V, seed, case)
        if n > int(np.sum(np.asarray(q) > 0)):
            continue
        d = jnp.asarray(np.random.default_rng(seed).choice(V, n, p=np.asarray(q), replace=False))
        K, want = _rsd_pair(p, q, d)
        np.testing.assert_allclose(K, want, atol=1e-12, err_msg=case)


def test_excess_is_the_positive_part_bitwise():
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        a = rng.random(10_000).astype(dt) * (rng.random(10_000) < 0.8)
        b = rng.random(10_000).astype(dt) * rng.choice([0, 1e-8, 1, 3], 10_000).astype(dt)
        np.testing.assert_array_equal(_core.excess(a, b), jnp.maximum(jnp.asarray(a) - b, 0))


@pytest.mark.parametrize("V", [7, 300, 1000])
def test_sample_weighted_equals_sample_index(V):
    rng = np.random.default_rng(V)
    p, q = rng.dirichlet(np.ones(V)), rng.dirichlet(np.ones(V))
    d = jnp.asarray(rng.choice(V, min(4, V), replace=False))
    pz = jnp.asarray(p).at[d].set(0)
    extra = jnp.asarray(rng.random(d.shape[0]))
    w = _core.excess(pz, 1.3 * q).at[d].add(extra)
    us = jnp.linspace(0, 1, 997, endpoint=False)
    a = jax.vmap(lambda u: _core.sample_weighted(u, lambda p, q: _core.excess(p, 1.3 * q), (pz, jnp.asarray(q)),
                                                 points=(d, extra)))(us)
    b = jax.vmap(lambda u: _core.sample_index(u, w))(us)
    assert np.mean(np.asarray(a) == np.asarray(b)) > 0.99  # block sums may round differently
    assert np.all(np.asarray(w)[np.asarray(a)] > 0)


def _set_reference(u, p, q, in_top, x, drafts):
    """The row-building form of the greedy / SpecHub verifier."""
    px, qx, r = _greedy._set_parts(p, q, in_top, x)
    ok = _core.accepts(u[0], px, qx)
    return _multi.matching(drafts, jnp.where(ok, x, _core.sample_index(u[1], r)))


@jax.jit
def _set_pairs(us, p, q, d):
    """Greedy (and, for two drafts, SpecHub) against the row-building form, for each row of
    uniforms ``us[S, 2]``: tokens and indices of both, stacked."""
    mask = jnp.zeros(p.shape, bool).at[d[:-1]].set(True)
    a = jax.vmap(lambda u: _greedy.GREEDY_OPTIMAL.verify_with_uniforms(u, p, q, d))(us)
    b = jax.vmap(lambda u: _set_reference(u, p, q, mask, d[-1], d))(us)
    out = [a.token, a.index, b.token, b.index]
    if d.shape[0] == 2:
        hub = _core.one_hot(jnp.argmax(q), p.shape[-1], bool)
        x = jnp.where(d[0] == jnp.argmax(q), d[1], d[0])
        c = jax.vmap(lambda u: _spechub.SPECHUB.verify_with_uniforms(u, p, q, d))(us)
        e = jax.vmap(lambda u: _set_reference(u, p, q, hub, x, d))(us)
        out += [c.token, c.index, e.token, e.index]
    return jnp.stack(out)


@pytest.mark.parametrize("n", [2, 3])
def test_set_verifiers_equal_the_row_building_form(n):
    for V, seed, case in CASES:
        p, q = _pair(V, seed, case)
        if n > int(np.sum(np.asarray(q) > 0)):
            continue
        d = jnp.asarray(np.argsort(-np.asarray(q), kind="stable")[:n])
        us = jnp.stack([jax.random.uniform(jax.random.key(s), (2,), p.dtype) for s in range(8)])
        out = np.asarray(_set_pairs(us, p, q, d))
        np.testing.assert_array_equal(out[0:2], out[2:4], err_msg=case)
        if n == 2:
            np.testing.assert_array_equal(out[4:6], out[6:8], err_msg=case)
