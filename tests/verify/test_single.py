"""Single-draft verification: exact audit against the closed form, properties, edge cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import spectheory
from spectheory.audit import exact
from spectheory.testing import prob_pairs
from spectheory.verify import SINGLE, single_acceptance

RULE = spectheory.rule("single")


@given(prob_pairs(1, 9))
def test_exact_audit_matches_maximal_coupling(pq):
    p, q = pq
    a = exact(RULE, p, q, 1)
    assert a.max_error <= 1e-12
    np.testing.assert_allclose(a.acceptance, np.minimum(p, q).sum(), atol=1e-12)
    np.testing.assert_allclose(single_acceptance(p, q), np.minimum(p, q).sum(), atol=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_exact_audit_random_pairs(seed):
    rng = np.random.default_rng(seed)
    V = int(rng.integers(2, 40))
    p, q = rng.dirichlet(np.ones(V) * 0.5), rng.dirichlet(np.ones(V) * 0.5)
    a = exact(RULE, p, q, 1)
    assert a.max_error <= 1e-12
    np.testing.assert_allclose(a.acceptance, np.minimum(p, q).sum(), atol=1e-12)


def test_kernel_by_hand():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.2, 0.2, 0.6])
    # draft 2 has p = 0: always rejected, residual (p - q)+ = (0.3, 0.3, 0) -> (0.5, 0.5, 0)
    np.testing.assert_allclose(SINGLE.kernel(p, q, np.array([2])), [0.5, 0.5, 0.0], atol=1e-15)
    # draft 0 has p/q >= 1: always accepted
    np.testing.assert_allclose(SINGLE.kernel(p, q, np.array([0])), [1.0, 0.0, 0.0], atol=1e-15)
    # partial acceptance: p = (0.2, 0.8), q = (0.5, 0.5), draft 0 accepted w.p. 0.4
    np.testing.assert_allclose(SINGLE.kernel(np.array([0.2, 0.8]), np.array([0.5, 0.5]), np.array([0])),
                               [0.4, 0.6], atol=1e-15)


def test_p_equals_q_never_rejects_and_no_nan():
    q = np.array([0.1, 0.2, 0.7])
    for u0 in [0.0, 0.5, 1 - 2**-53]:
        for x in range(3):
            res = SINGLE.verify_with_uniforms(np.array([u0, 0.3]), q, q, np.array([x]))
            assert int(res.token) == x and int(res.index) == 0
    K = SINGLE.kernel(q, q, np.array([1]))
    assert np.all(np.isfinite(K))
    np.testing.assert_allclose(K, [0, 1, 0], atol=1e-15)


def test_uniform_zero_does_not_accept_zero_mass():
    p = np.array([0.0, 1.0])
    q = np.array([0.5, 0.5])
    res = SINGLE.verify_with_uniforms(np.array([0.0, 0.0]), p, q, np.array([0]))
    assert int(res.token) == 1 and int(res.index) == -1


def test_draft_outside_q_support():
    """A draft with q(x) = 0 (not drawable, but legal input) is accepted iff p(x) > 0."""
    p = np.array([0.5, 0.5])
    q = np.array([1.0, 0.0])
    np.testing.assert_allclose(SINGLE.kernel(p, q, np.array([1])), [0.0, 1.0])
    p = np.array([1.0, 0.0])
    np.testing.assert_allclose(SINGLE.kernel(p, q, np.array([1])), [1.0, 0.0])


def test_vmap_over_large_vocab_float32():
    B, V = 32, 4096
    key = jax.random.key(0)
    lp, lq = jax.random.normal(key, (2, B, V)) * 2
    p, q = jax.nn.softmax(lp.astype(jnp.float32)), jax.nn.softmax(lq.astype(jnp.float32))
    d = jax.vmap(lambda k, qq: spectheory.drafts.iid_sample(k, qq, 1))(jax.random.split(key, B), q)
    res = jax.jit(jax.vmap(SINGLE.verify))(jax.random.split(jax.random.key(1), B), p, q, d)
    assert res.token.dtype == jnp.int32
    assert np.all((np.asarray(res.token) >= 0) & (np.asarray(res.token) < V))
    assert np.all(np.asarray(p)[np.arange(B), np.asarray(res.token)] > 0)
