"""Chain (token) verification: kernel vs an independent loop, sampler vs kernel, logits path."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectheory.audit import chi_square_test
from spectheory.verify import (
    chain,
    chain_from_logits,
    chain_from_logits_with_uniforms,
    chain_kernel,
    chain_with_uniforms,
)


def _laws(g, V, seed, zeros=False):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(V) * 0.6, size=g + 1)
    q = 0.5 * rng.dirichlet(np.ones(V) * 0.6, size=g) + 0.5 * p[:g]
    if zeros:
        q[:, 0] = 0.0
        q /= q.sum(-1, keepdims=True)
        p[:, 1] = 0.0
        p /= p.sum(-1, keepdims=True)
    d = np.array([rng.choice(V, p=q[i]) for i in range(g)], dtype=np.int32)
    return p, q, d


def _reference_kernel(p, q, d):
    """Joint law of (k accepted, next token) by a plain loop, written independently."""
    g, V = q.shape
    K = np.zeros((g + 1, V))
    reach = 1.0
    for i in range(g):
        x = d[i]
        a = 1.0 if q[i, x] == 0 and p[i, x] > 0 else (0.0 if q[i, x] == 0 else min(1.0, p[i, x] / q[i, x]))
        res = np.maximum(p[i] - q[i], 0)
        res = res / res.sum() if res.sum() > 0 else p[i]
        K[i] = reach * (1 - a) * res
        reach *= a
    K[g] = reach * p[g]
    return K


@pytest.mark.parametrize("g,V,seed,zeros", [(1, 3, 0, False), (3, 5, 1, False), (4, 6, 2, True), (0, 4, 3, False), (6, 2, 4, True)])
def test_kernel_matches_reference(g, V, seed, zeros):
    p, q, d = _laws(g, V, seed, zeros)
    K = np.asarray(chain_kernel(p, q, d))
    np.testing.assert_allclose(K, _reference_kernel(p, q, d), atol=1e-14)
    np.testing.assert_allclose(K.sum(), 1.0, atol=1e-14)


@pytest.mark.parametrize("g,V,seed", [(2, 4, 0), (4, 5, 1)])
def test_sampler_matches_kernel_chi_square(g, V, seed):
    """Encode (k, y) as one symbol and test the sampler against the kernel (alpha = 1e-3)."""
    p, q, d = _laws(g, V, seed, zeros=True)
    keys = jax.random.split(jax.random.key(seed), 30_000)
    res = jax.jit(jax.vmap(lambda k: chain(k, p, q, d)))(keys)
    k = np.asarray(res.num_accepted)
    y = np.asarray(res.tokens)[np.arange(len(k)), k]
    K = np.asarray(chain_kernel(p, q, d)).reshape(-1)
    out = chi_square_test(k * V + y, K, alpha=1e-3)
    assert out.passed, out.p_value
    toks = np.asarray(res.tokens)
    for row, kk in zip(toks[:200], k[:200]):
        np.testing.assert_array_equal(row[:kk], d[:kk])
        assert np.all(row[kk + 1:] == -1)


def test_chain_lossless_context_free_two_steps():
    """With a context-free target and draft, the first emitted token ~ p, and the second emitted
    token (when there is one) ~ p as well; checked by exact enumeration over drafts."""
    V, g = 3, 2
    rng = np.random.default_rng(5)
    p1, q1 = rng.dirichlet(np.ones(V)), rng.dirichlet(np.ones(V))
    P, Q = np.tile(p1, (g + 1, 1)), np.tile(q1, (g, 1))
    first = np.zeros(V)
    for d in itertools.product(range(V), repeat=g):
        w = np.prod(q1[list(d)])
        K = np.asarray(chain_kernel(P, Q, np.array(d)))
        first[d[0]] += w * K[1:].sum()
        first += w * K[0]
    np.testing.assert_allclose(first, p1, atol=1e-14)


@pytest.mark.parametrize("T", [1.0, 0.7, 2.5])
def test_from_logits_equals_probability_path(T):
    g, V, B = 4, 50, 200
    key = jax.random.key(11)
    tl = jax.random.normal(key, (B, g + 1, V)) * 3
    dl = tl[:, :g] + jax.random.normal(jax.random.key(12), (B, g, V))
    p, q = jax.nn.softmax(tl / T), jax.nn.softmax(dl / T)
    d = jax.jit(lambda k: jax.random.categorical(k, jnp.log(q)))(jax.random.key(13)).astype(jnp.int32)
    u = jax.random.uniform(jax.random.key(14), (B, g + 1), jnp.float64)
    a = jax.jit(jax.vmap(lambda uu, x, y, z: chain_from_logits_with_uniforms(uu, x, y, z, T)))(u, tl, dl, d)
    b = jax.jit(jax.vmap(chain_with_uniforms))(u, p, q, d)
    np.testing.assert_array_equal(np.asarray(a.num_accepted), np.asarray(b.num_accepted))
    np.testing.assert_array_equal(np.asarray(a.tokens), np.asarray(b.tokens))
    assert 0 < np.asarray(a.num_accepted).mean() < g


def test_from_logits_key_form_and_greedy():
    tl = np.log(np.array([[0.1, 0.6, 0.3], [0.7, 0.2, 0.1], [0.2, 0.2, 0.6]]))
    dl = np.log(np.array([[0.2, 0.5, 0.3], [0.1, 0.8, 0.1]]))
    # greedy: target argmaxes are 1, 0, 2; drafts (1, 1): first accepted, second replaced by 0
    res = chain_from_logits(jax.random.key(0), tl, dl, np.array([1, 1]), temperature=0.0)
    np.testing.assert_array_equal(res.tokens, [1, 0, -1])
    assert int(res.num_accepted) == 1
    res = chain_from_logits(jax.random.key(0), tl, dl, np.array([1, 0]), temperature=0.0)
    np.testing.assert_array_equal(res.tokens, [1, 0, 2])
    key = jax.random.key(3)
    u = jax.random.uniform(key, (3,), jnp.float64)
    a = chain_from_logits(key, tl, dl, np.array([1, 0]))
    b = chain_from_logits_with_uniforms(u, tl, dl, np.array([1, 0]))
    np.testing.assert_array_equal(a.tokens, b.tokens)


def test_from_logits_float32_and_bf16_no_nan():
    g, V = 5, 32000
    tl = (jax.random.normal(jax.random.key(0), (g + 1, V)) * 4).astype(jnp.bfloat16)
    dl = (tl[:g].astype(jnp.float32) + jax.random.normal(jax.random.key(1), (g, V))).astype(jnp.bfloat16)
    d = jnp.argmax(dl, axis=-1).astype(jnp.int32)
    res = jax.jit(chain_from_logits)(jax.random.key(2), tl, dl, d)
    k = int(res.num_accepted)
    assert 0 <= k <= g and 0 <= int(res.tokens[k]) < V


def test_jit_equals_eager_and_vmap():
    p, q, d = _laws(3, 6, 9)
    keys = jax.random.split(jax.random.key(0), 8)
    eager = [chain(k, p, q, d) for k in keys]
    batched = jax.jit(jax.vmap(chain, in_axes=(0, None, None, None)))(keys, p, q, d)
    np.testing.assert_array_equal(np.stack([e.tokens for e in eager]), batched.tokens)
    np.testing.assert_array_equal([int(e.num_accepted) for e in eager], batched.num_accepted)


def test_point_mass_target_and_equal_laws():
    V = 4
    p = np.tile(np.eye(V)[2], (3, 1))
    q = np.full((2, V), 0.25)
    K = np.asarray(chain_kernel(p, q, np.array([2, 2])))
    np.testing.assert_allclose(K[2, 2], 1.0)
    K = np.asarray(chain_kernel(p, q, np.array([1, 2])))
    np.testing.assert_allclose(K[0, 2], 1.0)
    qq = np.full((3, V), 0.25)
    K = np.asarray(chain_kernel(qq, qq[:2], np.array([0, 3])))
    np.testing.assert_allclose(K[2], qq[2], atol=1e-15)


def _reference_warp(l, T, k, p):
    """Temperature, top-k, top-p by sorting in NumPy (independent of the JAX code); the
    documented logits at T != 1 are shifted by the row maximum, (l - max l) / T."""
    x = np.asarray(l, np.float64)
    x = (x - np.max(x)) / T if T != 1.0 else x
    if k is not None:
        kth = np.sort(x)[::-1][k - 1]
        x = np.where(x >= kth, x, -np.inf)
    if p is not None:
        order = np.argsort(-x, kind="stable")
        pr = np.exp(x[order] - np.max(x))
        pr = pr / pr.sum()
        keep_n = int(np.searchsorted(np.cumsum(pr), p - 1e-12) + 1)
        mask = np.zeros_like(x, bool)
        mask[order[:keep_n]] = True
        x = np.where(mask, x, -np.inf)
    return x


@pytest.mark.parametrize("T,k,p", [(1.0, 5, None), (0.8, None, 0.9), (1.3, 20, 0.7), (1.0, 1, None), (1.0, None, 1e-6)])
def test_warp_logits_matches_reference(T, k, p):
    from spectheory.verify import warp_logits

    rng = np.random.default_rng(0)
    for _ in range(5):
        l = rng.standard_normal(50) * 2
        np.testing.assert_array_equal(np.isfinite(warp_logits(l, T, k, p)), np.isfinite(_reference_warp(l, T, k, p)))
        fin = np.isfinite(_reference_warp(l, T, k, p))
        np.testing.assert_allclose(np.asarray(warp_logits(l, T, k, p))[fin], _reference_warp(l, T, k, p)[fin], rtol=1e-6)


def test_from_logits_with_top_k_top_p_equals_warped_probabilities():
    from spectheory.verify import warp_logits

    g, V, B = 3, 30, 100
    tl = jax.random.normal(jax.random.key(0), (B, g + 1, V)) * 2
    dl = tl[:, :g] + jax.random.normal(jax.random.key(1), (B, g, V))
    wt, wd = warp_logits(tl, 0.9, 10, 0.8), warp_logits(dl, 0.9, 10, 0.8)
    p, q = jax.nn.softmax(wt), jax.nn.softmax(wd)
    d = jax.jit(lambda k: jax.random.categorical(k, wd))(jax.random.key(2)).astype(jnp.int32)
    u = jax.random.uniform(jax.random.key(3), (B, g + 1), jnp.float64)
    a = jax.jit(jax.vmap(lambda uu, x, y, z: chain_from_logits_with_uniforms(uu, x, y, z, 0.9, 10, 0.8)))(u, tl, dl, d)
    b = jax.jit(jax.vmap(chain_with_uniforms))(u, p, q, d)
    np.testing.assert_array_equal(np.asarray(a.tokens), np.asarray(b.tokens))
    assert np.all(np.isfinite(np.asarray(wt)[np.arange(B)[:, None], np.arange(g + 1)[None], np.maximum(np.asarray(a.tokens), 0)])
                  | (np.asarray(a.tokens) < 0))
