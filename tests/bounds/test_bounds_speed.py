"""Speed models: tokens per call, wall-time improvement, optimal γ, draft-tree accepted length."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

from spectheory.bounds import (
    expected_tokens_per_call,
    optimal_gamma,
    tree_acceptance_probabilities,
    tree_expected_length,
    walltime_improvement,
)


def test_theory_example_value():
    np.testing.assert_allclose(float(expected_tokens_per_call(0.75, 7)), 3.5995, rtol=0, atol=5e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.5, 0.75, 0.99, 1 - 1e-9, 1.0])
def test_tokens_per_call_is_the_geometric_sum(alpha):
    gammas = np.arange(0, 21)
    expected = np.array([sum(alpha**i for i in range(g + 1)) for g in gammas])
    got = expected_tokens_per_call(jnp.asarray(alpha, jnp.float64), jnp.asarray(gammas))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-12, atol=0)


def test_tokens_per_call_float32_near_one():
    got = expected_tokens_per_call(jnp.float32(1 - 2**-20), 7)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(float(got), sum((1 - 2**-20) ** i for i in range(8)), rtol=1e-6)
    np.testing.assert_allclose(float(expected_tokens_per_call(jnp.float32(1.0), 7)), 8.0)


@given(st.floats(0, 1), st.integers(0, 30), st.floats(0, 2))
def test_walltime_improvement_formula(alpha, gamma, c):
    tokens = gamma + 1 if alpha == 1 else (1 - alpha ** (gamma + 1)) / (1 - alpha)
    got = walltime_improvement(jnp.float64(alpha), gamma, jnp.float64(c))
    np.testing.assert_allclose(float(got), tokens / (gamma * c + 1), rtol=1e-9)


def brute_gamma(alpha, c, max_gamma):
    vals = [sum(alpha**i for i in range(g + 1)) / (g * c + 1) for g in range(max_gamma + 1)]
    best = int(np.argmax(vals))
    return best, vals[best]


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.6, 0.8, 0.9, 0.97, 1.0])
@pytest.mark.parametrize("c", [0.0, 0.01, 0.1, 0.5, 2.0])
def test_optimal_gamma_brute_force(alpha, c):
    res = optimal_gamma(jnp.float64(alpha), jnp.float64(c), max_gamma=40)
    g, v = brute_gamma(alpha, c, 40)
    np.testing.assert_allclose(float(res.improvement), v, rtol=1e-12)
    # the returned gamma attains the maximum (up to rounding: with c = 0 the tail terms of the
    # geometric series fall below float64 resolution and several gammas tie)
    g_got = int(res.gamma)
    np.testing.assert_allclose(sum(alpha**i for i in range(g_got + 1)) / (g_got * c + 1), v, rtol=1e-12)
    if c > 0 and 0 < alpha < 1:
        assert g_got == g


def test_optimal_gamma_vectorised_and_jit():
    alphas = jnp.linspace(0.0, 0.95, 7)
    cs = jnp.array([0.02, 0.2])[:, None]
    res = jax.jit(functools.partial(optimal_gamma, max_gamma=30))(alphas, cs)
    assert res.gamma.shape == (2, 7)
    for i, c in enumerate([0.02, 0.2]):
        for j, a in enumerate(np.asarray(alphas)):
            g, v = brute_gamma(float(a), c, 30)
            np.testing.assert_allclose(float(res.improvement[i, j]), v, rtol=1e-6)
            if a > 0:
                assert int(res.gamma[i, j]) == g


def test_speed_validation():
    with pytest.raises(ValueError, match="alpha"):
        expected_tokens_per_call(1.5, 3)
    with pytest.raises(ValueError, match="gamma"):
        expected_tokens_per_call(0.5, 2.5)
    with pytest.raises(ValueError, match="gamma"):
        expected_tokens_per_call(0.5, -1)
    with pytest.raises(ValueError, match="c:"):
        walltime_improvement(0.5, 3, -0.1)
    with pytest.raises(ValueError, match="alpha"):
        optimal_gamma(np.nan, 0.1)
    with pytest.raises(ValueError, match="max_gamma"):
        optimal_gamma(0.5, 0.1, max_gamma=-1)


# ----------------------------------------------------------------------------------------------
# draft trees
# ----------------------------------------------------------------------------------------------


def random_tree(rng, N):
    """Random topologically ordered tree and conditional acceptance probabilities whose
    sibling sums are at most one (a Dirichlet split that includes a 'stop' share)."""
    parents = np.array([-1] + [int(rng.integers(0, v)) for v in range(1, N)])
    a = np.zeros(N)
    a[0] = 1.0
    for u in range(N):
        kids = np.flatnonzero(parents == u)
        if kids.size:
            share = rng.dirichlet(np.ones(kids.size + 1))
            a[kids] = share[:-1]
    return parents, a


def expected_length_recursive(parents, a):
    """E[accepted length] by the recursion E(u) = sum over children c of a_c (1 + E(c))."""
    N = len(parents)
    E = np.zeros(N)
    for u in range(N - 1, -1, -1):
        kids = np.flatnonzero(parents == u)
        E[u] = sum(a[c] * (1 + E[c]) for c in kids)
    return E[0]


def simulate_lengths(parents, a, rng, draws):
    kids = [np.flatnonzero(parents == u) for u in range(len(parents))]
    out = np.empty(draws)
    for k in range(draws):
        u, depth = 0, 0
        while kids[u].size:
            r = rng.random()
            cum = np.cumsum(a[kids[u]])
            j = int(np.searchsorted(cum, r, side="right"))
            if j == kids[u].size:
                break  # every child rejected
            u, depth = kids[u][j], depth + 1
        out[k] = depth
    return out


@pytest.mark.parametrize("N", [1, 2, 7, 30])
def test_tree_expected_length_against_recursion(N):
    rng = np.random.default_rng(N)
    parents, a = random_tree(rng, N)
    np.testing.assert_allclose(float(tree_expected_length(parents, a)), expected_length_recursive(parents, a), rtol=1e-12, atol=1e-15)


def test_tree_expected_length_against_simulation():
    """Monte Carlo check at a fixed seed: |mean - E| below 4 standard errors (p ~ 6e-5)."""
    rng = np.random.default_rng(123)
    parents, a = random_tree(rng, 25)
    lengths = simulate_lengths(parents, a, np.random.default_rng(7), 20000)
    se = lengths.std(ddof=1) / np.sqrt(lengths.size)
    assert abs(lengths.mean() - float(tree_expected_length(parents, a))) < 4 * se


def test_tree_marginals_are_path_products():
    rng = np.random.default_rng(3)
    parents, a = random_tree(rng, 40)
    expected = np.ones(40)
    for v in range(1, 40):
        expected[v] = expected[parents[v]] * a[v]  # parents come first (topological order)
    np.testing.assert_allclose(np.asarray(tree_acceptance_probabilities(parents, a)), expected, rtol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.75, 1.0])
@pytest.mark.parametrize("gamma", [1, 7, 16])
def test_chain_tree_matches_tokens_per_call(alpha, gamma):
    parents = np.arange(-1, gamma)
    a = np.full(gamma + 1, alpha)
    np.testing.assert_allclose(
        float(tree_expected_length(parents, a)) + 1, float(expected_tokens_per_call(alpha, gamma)), rtol=1e-12
    )


def test_tree_batched_jit_vmap():
    rng = np.random.default_rng(5)
    parents, _ = random_tree(rng, 12)
    # one topology, four rows of sibling-consistent probabilities
    A = np.stack([_resample(parents, np.random.default_rng(s)) for s in range(4)])
    f = functools.partial(tree_expected_length, parents)
    batched = f(A)
    loop = [expected_length_recursive(parents, A[i]) for i in range(4)]
    np.testing.assert_allclose(np.asarray(batched), loop, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.jit(f)(jnp.asarray(A))), loop, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.vmap(f)(jnp.asarray(A))), loop, rtol=1e-12)


def _resample(parents, rng):
    a = np.ones(len(parents))
    for u in range(len(parents)):
        kids = np.flatnonzero(parents == u)
        if kids.size:
            a[kids] = rng.dirichlet(np.ones(kids.size + 1))[:-1]
    return a


def test_tree_validation():
    with pytest.raises(ValueError, match="parents: node 0 must be the root"):
        tree_expected_length([0, 0], [1.0, 0.5])
    with pytest.raises(ValueError, match="topological order"):
        tree_expected_length([-1, 2, 0], [1.0, 0.5, 0.5])
    with pytest.raises(ValueError, match="accept_probs: expected last axis 3"):
        tree_expected_length([-1, 0, 0], [1.0, 0.5])
    with pytest.raises(ValueError, match="summing to <= 1"):
        tree_expected_length([-1, 0, 0], [1.0, 0.7, 0.7])
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        tree_expected_length([-1, 0], [1.0, 1.5])


def test_speed_models_vmap_and_jit():
    alphas = jnp.linspace(0.0, 1.0, 6)
    gammas = jnp.arange(6)
    loop = np.array([sum(float(a) ** i for i in range(int(g) + 1)) for a, g in zip(alphas, gammas)])
    np.testing.assert_allclose(np.asarray(jax.vmap(expected_tokens_per_call)(alphas, gammas)), loop, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.jit(expected_tokens_per_call)(alphas, gammas)), loop, rtol=1e-12)
    f = jax.vmap(walltime_improvement, in_axes=(0, 0, None))
    np.testing.assert_allclose(np.asarray(f(alphas, gammas, 0.1)), loop / (np.asarray(gammas) * 0.1 + 1), rtol=1e-12)
    g = jax.vmap(functools.partial(optimal_gamma, max_gamma=20), in_axes=(0, None))(alphas, 0.05)
    for a, gam in zip(np.asarray(alphas), np.asarray(g.gamma)):
        best, val = brute_gamma(float(a), 0.05, 20)
        np.testing.assert_allclose(float(sum(a**i for i in range(gam + 1)) / (gam * 0.05 + 1)), val, rtol=1e-12)
