"""Vocabulary trimming of the drafter: trimmed law, single-draft and optimal acceptance."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectheory.bounds import trim_draft, trimmed_acceptance, trimmed_optimal_acceptance
from spectheory.drafts import IID, WITHOUT_REPLACEMENT


def np_trim(q, m, freq=None):
    """Keep the m most frequent tokens (ties to the lower id) and renormalise, in NumPy."""
    freq = q if freq is None else freq
    keep = np.argsort(-np.asarray(freq, np.float64), kind="stable")[:m]
    out = np.zeros_like(q)
    out[keep] = q[keep]
    return out / out.sum() if out.sum() > 0 else out


def iid_law(q, n):
    tuples = np.array(list(itertools.product(range(len(q)), repeat=n)))
    probs = np.prod(q[tuples], axis=1)
    return tuples[probs > 0], probs[probs > 0]


def wor_law(q, n):
    tuples, probs = [], []
    for tup in itertools.permutations(range(len(q)), n):
        rem = np.ones(len(q), bool)
        pr = 1.0
        for x in tup:
            den = q[rem].sum()
            pr = pr * q[x] / den if den > 0 else 0.0
            rem[x] = False
        if pr > 0:
            tuples.append(tup)
            probs.append(pr)
    return np.array(tuples), np.array(probs)


def brute_alpha(p, tuples, probs):
    best = np.inf
    for bits in itertools.product([False, True], repeat=len(p)):
        H = np.array(bits)
        best = min(best, p[H].sum() + 1 - probs[np.all(H[tuples], axis=1)].sum())
    return best


@pytest.fixture
def laws():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(6) * 0.7)
    q = rng.dirichlet(np.ones(6) * 0.7)
    return p, q


def test_trim_draft_matches_numpy(laws):
    _, q = laws
    for m in range(1, 7):
        np.testing.assert_allclose(np.asarray(trim_draft(q, m)), np_trim(q, m), rtol=1e-12)
    freq = np.array([3.0, 0.0, 5.0, 5.0, 1.0, 2.0])  # tie between tokens 2 and 3 -> 2 first
    for m in range(1, 7):
        np.testing.assert_allclose(np.asarray(trim_draft(q, m, frequency=freq)), np_trim(q, m, freq), rtol=1e-12)


def test_trimmed_acceptance_matches_numpy(laws):
    p, q = laws
    ms = [1, 2, 4, 6]
    got = trimmed_acceptance(p, q, ms)
    assert got.shape == (4,)
    np.testing.assert_allclose(np.asarray(got), [np.minimum(p, np_trim(q, m)).sum() for m in ms], rtol=1e-12)
    np.testing.assert_allclose(float(trimmed_acceptance(p, q, 6)), np.minimum(p, q).sum(), rtol=1e-12)


@pytest.mark.parametrize("scheme,law", [("iid", iid_law), ("without_replacement", wor_law),
                                        (WITHOUT_REPLACEMENT, wor_law)])
def test_trimmed_optimal_acceptance_brute_force(laws, scheme, law):
    p, q = laws
    n = 2
    ms = [2, 3, 5, 6]
    got = trimmed_optimal_acceptance(p, q, n, ms, scheme)
    expected = [brute_alpha(p, *law(np_trim(q, m), n)) for m in ms]
    np.testing.assert_allclose(np.asarray(got), expected, rtol=0, atol=1e-9)


def test_trimmed_optimal_acceptance_scheme_errors(laws):
    p, q = laws
    with pytest.raises(ValueError, match="scheme: unknown draft scheme"):
        trimmed_optimal_acceptance(p, q, 2, [3], "gumbel")
    with pytest.raises(ValueError, match="scheme: draft scheme 'test-none' has set-law family None"):
        trimmed_optimal_acceptance(p, q, 2, [3], IID._replace(name="test-none", family=None))
    with pytest.raises(ValueError, match="n: draft scheme 'hub' does not draw n=3"):
        trimmed_optimal_acceptance(p, q, 3, [3], "hub")


def test_trimming_can_help_with_an_external_ranking():
    """A drafter that wastes mass on a token the target never emits gains from trimming it."""
    p = np.array([0.0, 0.5, 0.5])
    q = np.array([0.5, 0.25, 0.25])
    freq = np.array([0.0, 10.0, 10.0])
    np.testing.assert_allclose(np.asarray(trimmed_acceptance(p, q, [2, 3], frequency=freq)), [1.0, 0.5], rtol=1e-12)


def test_batched_and_jit():
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(20) * 0.5, size=3)
    q = rng.dirichlet(np.ones(20) * 0.5, size=3)
    ms = np.array([1, 5, 20])
    got = trimmed_acceptance(p, q, ms)
    assert got.shape == (3, 3)
    want = [[np.minimum(p[i], np_trim(q[i], m)).sum() for m in ms] for i in range(3)]
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
    jitted = jax.jit(trimmed_acceptance)(jnp.asarray(p), jnp.asarray(q), jnp.asarray(ms))
    np.testing.assert_allclose(np.asarray(jitted), want, rtol=1e-12)
    f = jax.jit(functools.partial(trimmed_optimal_acceptance, n=2, ms=ms, scheme="iid"))
    opt = f(jnp.asarray(p), jnp.asarray(q))
    assert opt.shape == (3, 3)
    assert np.all(np.asarray(opt) >= np.asarray(got) - 1e-12)  # two drafts beat one


def test_zero_kept_mass_gives_zero():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.0, 0.0, 1.0])
    freq = np.array([2.0, 1.0, 0.0])
    np.testing.assert_allclose(np.asarray(trim_draft(q, 2, frequency=freq)), 0.0)
    np.testing.assert_allclose(float(trimmed_acceptance(p, q, 2, frequency=freq)), 0.0)
    np.testing.assert_allclose(float(trimmed_optimal_acceptance(p, q, 2, 2, frequency=freq)), 0.0)


def test_vocabtrim_validation(laws):
    p, q = laws
    with pytest.raises(ValueError, match="ms: kept vocabulary sizes"):
        trimmed_acceptance(p, q, [0, 2])
    with pytest.raises(ValueError, match="ms: kept vocabulary sizes"):
        trimmed_acceptance(p, q, [7])
    with pytest.raises(ValueError, match="ms: expected ints"):
        trimmed_acceptance(p, q, [1.5])
    with pytest.raises(ValueError, match="frequency: expected last axis 6"):
        trimmed_acceptance(p, q, [2], frequency=np.ones(5))
    with pytest.raises(ValueError, match="frequency: expected finite non-negative"):
        trimmed_acceptance(p, q, [2], frequency=-np.ones(6))
    with pytest.raises(ValueError, match="ms: trimming to m=2 leaves 2 tokens"):
        trimmed_optimal_acceptance(p, q, 3, [2, 4], "without_replacement")
    with pytest.raises(ValueError, match="m: expected a single int"):
        trim_draft(q, [1, 2])
    with pytest.raises(ValueError, match="q: does not sum to 1"):
        trim_draft(q * 2, 1)


def test_vocabtrim_vmap():
    rng = np.random.default_rng(8)
    p = rng.dirichlet(np.ones(10), size=4)
    q = rng.dirichlet(np.ones(10), size=4)
    ms = [2, 5, 10]
    trimmed = jax.vmap(lambda qq: trim_draft(qq, 3))(jnp.asarray(q))
    np.testing.assert_allclose(np.asarray(trimmed), [np_trim(q[i], 3) for i in range(4)], rtol=1e-12)
    acc = jax.vmap(lambda a, b: trimmed_acceptance(a, b, ms))(jnp.asarray(p), jnp.asarray(q))
    np.testing.assert_allclose(np.asarray(acc), np.asarray(trimmed_acceptance(p, q, ms)), rtol=1e-12)
    opt = jax.vmap(lambda a, b: trimmed_optimal_acceptance(a, b, 2, ms, "greedy"))(jnp.asarray(p), jnp.asarray(q))
    np.testing.assert_allclose(np.asarray(opt), np.asarray(trimmed_optimal_acceptance(p, q, 2, ms, "greedy")), rtol=1e-12)
