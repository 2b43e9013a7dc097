"""The blocked without-replacement path of ``optimal_acceptance`` against the exact prefix scan.

For large vocabularies α* without replacement is computed on blocks of the ratio order: a block's
light tokens enter through power sums (a truncated series), heavy tokens exactly, and only the
blocks whose lower bound can beat the best block end are scanned token by token
(``_race._wor_blocked_best``). The reference is the exact scan over every prefix
(``_race._wor_scan_best``, itself checked against brute force over subsets and the transport LP
in ``test_bounds_exact.py``) with the same quadrature, so the two must agree to rounding.
Small block lengths let small vocabularies exercise every branch: light-only and heavy-only
blocks, ties, zeros, more heavy tokens than slots, and too few refinement rounds.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from spectheory.bounds import all_in_probability, optimal_acceptance
from spectheory.bounds import _optimal, _race


@functools.partial(jax.jit, static_argnums=(2,))
def _sorted(p, q, n):
    perm, _ = _optimal._sort_by_ratio(_optimal._ratios(p, q))
    return jnp.take_along_axis(p, perm, -1), jnp.take_along_axis(q, perm, -1)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _scan(ps, qs, n, K):
    return _race._wor_scan_best(ps, qs, n, K)


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5, 6, 7))
def _blocked(ps, qs, n, K, c, kh, R, rounds):
    return _race._wor_blocked_best(ps, qs, n, K, c=c, kh=kh, R=R, rounds=rounds)


def lm_like(B, V, seed, scale=3.0, noise=1.0):
    """Softmax of Gaussian logits; the drafter's logits perturbed by Gaussian noise."""
    rng = np.random.default_rng(seed)
    lt = rng.standard_normal((B, V)) * scale
    ld = lt + rng.standard_normal((B, V)) * noise
    sm = lambda x: np.exp(x - x.max(-1, keepdims=True)) / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)  # noqa: E731
    return sm(lt), sm(ld)


def prefix_value(ps, qs, m, n, K):
    """p(H) + 1 - Q(H) for the prefix of size m, Q by the order-free product of all_in_probability."""
    V = ps.shape[-1]
    H = np.arange(V)[None, :] < np.asarray(m)[:, None]
    Q = np.asarray(all_in_probability(qs, jnp.asarray(H), n, "without_replacement", num_nodes=K))
    return np.sum(np.where(H, np.asarray(ps), 0), -1) + 1 - Q


def check_against_scan(p, q, n, K=64, c=8, kh=64, R=4, rounds=64, atol=1e-12):
    ps, qs = _sorted(jnp.asarray(p), jnp.asarray(q), n)
    want, _ = _scan(ps, qs, n, K)
    got, m, ok = _blocked(ps, qs, n, K, c, kh, R, rounds)
    ok = np.asarray(ok)
    assert ok.all(), "the blocked path should certify these rows"
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=0, atol=atol)
    # the returned prefix attains the returned value
    np.testing.assert_allclose(prefix_value(ps, qs, m, n, K), np.asarray(got), rtol=0, atol=atol)
    return np.asarray(m)


@pytest.mark.parametrize("n,scale", [(3, 1.0), (8, 5.0)])
def test_lm_like_laws_many_light_tokens(n, scale):
    """V = 1500 LM-like laws: most tokens are light (power-sum series), a few tens heavy."""
    p, q = lm_like(3, 1500, seed=n + int(10 * scale), scale=scale)
    check_against_scan(p, q, n, c=16)


@settings(max_examples=10)
@given(
    V=st.sampled_from([70]),
    n=st.sampled_from([3, 5]),
    conc=st.sampled_from([0.05, 0.3, 1.0, 5.0]),
    zeros=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_random_laws_small_blocks(V, n, conc, zeros, seed):
    """Dirichlet laws (heavy atoms to near-uniform), zeros in p and q, blocks of 4 tokens (few
    shapes, so few compilations)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(V) * conc, size=2)
    q = rng.dirichlet(np.ones(V) * conc, size=2)
    if zeros:
        p[:, rng.random(V) < 0.2] = 0
        q[:, rng.random(V) < 0.2] = 0
        q[:, :n] += 1e-3  # keep at least n drafts possible
        p[:, 0] += 1e-3
        p /= p.sum(-1, keepdims=True)
        q /= q.sum(-1, keepdims=True)
    check_against_scan(p, q, n, c=4)


def test_ties_and_equal_laws():
    """p == q (every prefix ratio 1: a flat order), and blocks of exactly tied ratios."""
    rng = np.random.default_rng(7)
    q = rng.dirichlet(np.ones(200) * 0.5, size=2)
    check_against_scan(q, q, 5, c=8)
    base = rng.dirichlet(np.ones(20), size=2)
    q = np.repeat(base, 10, axis=1) / 10  # groups of 10 equal tokens
    p = np.repeat(rng.dirichlet(np.ones(20), size=2), 10, axis=1) / 10
    check_against_scan(p, q, 5, c=8)


def test_float32_matches_float64():
    """Float32 inputs (default 24 nodes) against float64: the blocked path sums in blocks."""
    p, q = lm_like(2, 6000, seed=3)
    ps, qs = _sorted(jnp.asarray(p), jnp.asarray(q), 8)
    want, _, ok64 = _blocked(ps, qs, 8, 64, 64, 128, 16, 8)
    ps32, qs32 = _sorted(jnp.asarray(p, jnp.float32), jnp.asarray(q, jnp.float32), 8)
    got, _, ok32 = _blocked(ps32, qs32, 8, 24, 64, 128, 16, 8)
    assert np.asarray(ok64).all() and np.asarray(ok32).all()
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want), rtol=0, atol=2e-6)


def test_too_many_heavy_tokens_or_rounds_is_not_certified():
    """More heavy tokens than slots, or too few refinement rounds: the rows are reported as not
    certified (the caller then scans). With too few rounds the value is still attained by the
    returned prefix, so it is an upper bound on the optimum."""
    p, q = lm_like(2, 400, seed=5, scale=1.0)
    ps, qs = _sorted(jnp.asarray(p), jnp.asarray(q), 4)
    want, _ = _scan(ps, qs, 4, 64)
    _, _, ok = _blocked(ps, qs, 4, 64, 8, 2, 4, 64)
    assert not np.asarray(ok).any()
    got, m, ok = _blocked(ps, qs, 4, 64, 8, 64, 4, 0)
    assert not np.asarray(ok).any()
    assert np.all(np.asarray(got) >= np.asarray(want) - 1e-12)
    np.testing.assert_allclose(prefix_value(ps, qs, m, 4, 64), np.asarray(got), rtol=0, atol=1e-12)


def test_public_path_large_vocabulary_and_fallback():
    """Through optimal_acceptance at V = 5000 (blocked path): equal to the scan, and the
    certificate attains the value; a law with 200 heavy tokens (more than the slots)
    goes through the exact-scan fallback and gives the scan's value too."""
    V, n = 5000, 8
    p, q = lm_like(1, V, seed=11)
    rng = np.random.default_rng(0)
    q_flat = np.full((1, V), 1e-6)
    q_flat[0, rng.permutation(V)[:200]] = 1.0  # 200 tokens of mass ~1/200: all heavy (q T > 0.25)
    q_flat /= q_flat.sum()
    p_flat = rng.dirichlet(np.ones(V), size=1)
    assert V >= _race._BLOCKED_MIN_V
    for pp, qq in ((p, q), (p_flat, q_flat)):  # same shapes: one compilation
        res = optimal_acceptance(pp, qq, n, "without_replacement")
        ps, qs = _sorted(jnp.asarray(pp), jnp.asarray(qq), n)
        want, _ = _scan(ps, qs, n, 64)
        np.testing.assert_allclose(np.asarray(res.value), np.asarray(want), rtol=0, atol=1e-12)
        QH = all_in_probability(qq, res.certificate, n, "without_replacement")
        np.testing.assert_allclose(np.asarray(res.value), (pp * np.asarray(res.certificate)).sum(-1) + 1 - np.asarray(QH),
                                   rtol=0, atol=1e-10)
    _, _, ok = _blocked(*_sorted(jnp.asarray(p_flat), jnp.asarray(q_flat), n), n, 64, _race._BLOCK, _race._HEAVY,
                        _race._REFINE, _race._ROUNDS)
    assert not np.asarray(ok).any(), "200 heavy tokens do not fit the slots: the fallback must run"


def test_series_coefficients():
    """(e^x - 1)^k = Σ_m C[k-1, m-1] x^m, checked against the function itself."""
    n, D = 6, 30
    C = _race._stirling_coeffs(n, D)
    x = np.linspace(0.0, 0.6, 7)
    for k in range(1, n):
        series = sum(C[k - 1, m - 1] * x**m for m in range(1, D + 1))
        np.testing.assert_allclose(series, np.expm1(x) ** k, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("conc", [0.1, 1.0])
def test_quadrature_cutoff_bounds_the_tail(conc):
    """The upper end T of the quadrature: for every H, the neglected piece of Q(all in H),
    λ ∫_T^∞ e^{-λt} P(N_H(t) < n) dt, is at most 1e-8 (float32's δ and n e^{-L}), computed here
    by adaptive quadrature (SciPy) with the Poisson-binomial law evaluated exactly."""
    import itertools

    from scipy import integrate

    rng = np.random.default_rng(int(conc * 10))
    n, V = 4, 6
    for _ in range(3):
        q = rng.dirichlet(np.ones(V) * conc)
        _, _, T = _race._race_nodes(jnp.asarray(q[None], jnp.float32), n, 24)
        T = float(T[0])
        for H in itertools.product([False, True], repeat=V):
            H = np.array(H)
            lam = q[~H].sum()
            if H.sum() < n or lam == 0:  # Q = 0 exactly, or Q = 1 and no tail
                continue

            def integrand(t):
                pi = np.zeros(n)
                pi[0] = 1.0
                for bi in -np.expm1(-q[H] * t):
                    pi[1:] = pi[1:] * (1 - bi) + pi[:-1] * bi
                    pi[0] *= 1 - bi
                return lam * np.exp(-lam * t) * pi.sum()

            tail, err = integrate.quad(integrand, T, np.inf, epsabs=1e-15, limit=200)
            assert tail <= 1e-8, (q, H, T, tail, err)
