"""Sampling without replacement: Gumbel-top-k against the Plackett-Luce law, and stochastic
beam search against the Plackett-Luce law over complete sequences (Kool et al. 2019).

The enumerated Plackett-Luce law is the without-replacement draft scheme's
(``spectheory.drafts.without_replacement_law``); it is checked here against Gumbel integrals and
an independent enumeration."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
from hypothesis import given, settings

from spectheory.audit import chi_square_test
from spectheory.drafts import without_replacement_law
from spectheory.models import TableLM
from spectheory.sampling import (
    gumbel_top_k,
    gumbel_top_k_with_gumbels,
    plackett_luce_log_prob,
    sequence_law,
    stochastic_beam_search,
    stochastic_beam_search_with_gumbels,
    table_log_probs_fn,
)
from spectheory.testing import prob_vectors

ALPHA = 1e-3


def _pl_enumerated(weights, k):
    """Independent enumeration of the ordered k-tuple law: draw one item at a time from the
    remaining weights, renormalised (the definition of drawing without replacement)."""
    items = [i for i, w in enumerate(weights) if w > 0]
    law = {}
    for t in itertools.permutations(items, k):
        pr, left = 1.0, list(weights)
        for i in t:
            pr *= left[i] / sum(left)
            left[i] = 0.0
        law[t] = pr
    return law


def _chi_square_tuples(samples, law):
    keys = list(law)
    index = {t: i for i, t in enumerate(keys)}
    idx = np.array([index.get(tuple(s), -1) for s in samples])
    assert np.all(idx >= 0), "a sampled tuple has probability zero"
    return chi_square_test(idx, np.array([law[t] for t in keys]), alpha=ALPHA)


# --- Gumbel-top-k ----------------------------------------------------------------------------

P5 = np.array([0.4, 0.3, 0.2, 0.0, 0.1])


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_gumbel_top_k_chi_square_on_ordered_tuples(k):
    N = 20_000
    keys = jax.random.split(jax.random.key(40 + k), N)
    logits = jnp.log(jnp.asarray(P5))
    draws = np.asarray(jax.jit(jax.vmap(lambda key: gumbel_top_k(key, logits, k)))(keys))
    assert draws.shape == (N, k)
    res = _chi_square_tuples(draws, _pl_enumerated(list(P5), k))
    assert res.passed, (k, res.p_value)


def _gumbel_order_prob(w, order):
    """P(the k largest of G_i ~ Gumbel(log w_i) come in `order`), k <= 2 or full orders of
    three items, by numerical integration of the Gumbel densities (independent of the
    Plackett-Luce formula)."""
    mu = np.log(np.asarray(w, dtype=float))
    F = lambda i, x: np.exp(-np.exp(-(x - mu[i])))
    f = lambda i, x: np.exp(-(x - mu[i])) * F(i, x)
    others = [i for i in range(len(w)) if i not in order]
    if len(order) == 1:
        a, = order
        g = lambda x: f(a, x) * np.prod([F(o, x) for o in others])
    else:
        a, b = order[0], order[1]
        rest = others + list(order[2:])
        # G_b = x is the second largest: G_a > x, the rest below x (their order is free for
        # k = 2; for a full order of three items `rest` is the last item).
        g = lambda x: f(b, x) * (1 - F(a, x)) * np.prod([F(o, x) for o in rest])
    return scipy.integrate.quad(g, -30, 40, epsabs=1e-13, epsrel=1e-12, limit=200)[0]


def test_without_replacement_law_exact_against_gumbel_integrals():
    w = [0.5, 0.3, 0.15, 0.05]
    for k in (1, 2):
        tuples, probs = without_replacement_law(w, k)
        np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-14)
        for t, pr in zip(tuples, probs):
            np.testing.assert_allclose(pr, _gumbel_order_prob(w, tuple(t)), atol=1e-9)
    w3 = [0.6, 0.3, 0.1]
    tuples, probs = without_replacement_law(w3, 3)
    for t, pr in zip(tuples, probs):
        np.testing.assert_allclose(pr, _gumbel_order_prob(w3, tuple(t)), atol=1e-9)


@settings(max_examples=12)
@given(w=prob_vectors(min_size=1, max_size=5))
def test_without_replacement_law_matches_enumeration(w):
    support = int(np.sum(w > 0))
    for k in range(1, support + 1):
        tuples, probs = without_replacement_law(w, k)
        law = _pl_enumerated(list(w), k)
        assert len(tuples) == len(law)
        np.testing.assert_allclose(probs, [law[tuple(t)] for t in tuples], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-12)


def test_plackett_luce_log_prob_matches_enumeration():
    w = np.array([0.35, 0.0, 0.25, 0.3, 0.1])
    with np.errstate(divide="ignore"):
        logits = np.log(w)
    for k in (1, 3, 4):
        law = _pl_enumerated(list(w), k)
        tuples = np.array(list(law), dtype=np.int32)
        lp = jax.jit(jax.vmap(plackett_luce_log_prob, in_axes=(None, 0)))(logits, tuples)
        np.testing.assert_allclose(np.exp(np.asarray(lp)), [law[tuple(t)] for t in tuples], rtol=1e-10)
    # a tuple through a zero-probability token has probability zero
    assert float(plackett_luce_log_prob(logits, np.array([0, 1], np.int32))) == -np.inf


def test_gumbel_top_k_forms_jit_vmap():
    B, V, k = 6, 7, 3
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(B, V))
    logits[0, :3] = -np.inf
    keys = jax.random.split(jax.random.key(3), B)
    loop = np.stack([np.asarray(gumbel_top_k(kk, l, k)) for kk, l in zip(keys, logits)])
    for kk, l, row in zip(keys, logits, loop):
        g = jax.random.gumbel(kk, (V,), jnp.float64)
        np.testing.assert_array_equal(np.asarray(gumbel_top_k_with_gumbels(g, l, k)), row)
        np.testing.assert_array_equal(np.asarray(jax.jit(gumbel_top_k, static_argnums=2)(kk, l, k)), row)
        assert len(set(row.tolist())) == k
    batched = jax.jit(jax.vmap(gumbel_top_k, in_axes=(0, 0, None)), static_argnums=2)(keys, logits, k)
    np.testing.assert_array_equal(np.asarray(batched), loop)
    assert set(loop[0].tolist()) <= {3, 4, 5, 6}


def test_gumbel_top_k_validation():
    with pytest.raises(ValueError, match="too large"):
        gumbel_top_k(jax.random.key(0), jnp.log(jnp.asarray(P5)), 5)
    with pytest.raises(ValueError, match="k"):
        gumbel_top_k(jax.random.key(0), jnp.zeros(3), 4)
    with pytest.raises(ValueError, match="NaN"):
        gumbel_top_k(jax.random.key(0), jnp.array([0.0, jnp.nan]), 1)
    with pytest.raises(ValueError, match="positive mass"):
        without_replacement_law([0.5, 0.5, 0.0], 3)


# --- stochastic beam search --------------------------------------------------------------

BEAM_CASES = [(3, 2, 2, 0.0), (3, 2, 3, 0.3), (2, 3, 3, 0.0), (2, 3, 2, 0.3)]


@pytest.mark.parametrize("V,D,W,zero_prob", BEAM_CASES)
def test_stochastic_beam_search_chi_square_against_sequence_plackett_luce(V, D, W, zero_prob):
    lm = TableLM.random(V, D, seed=V * 10 + D + W, zero_prob=zero_prob, concentration=0.8)
    seqs, probs = sequence_law(lm, D)
    assert len(seqs) >= W
    np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-12)
    law_idx = _pl_enumerated(list(probs), W)
    law = {tuple(seqs[i] for i in t): pr for t, pr in law_idx.items()}
    fn = table_log_probs_fn(lm, D)
    N = 20_000
    keys = jax.random.split(jax.random.key(V + 7 * D + 31 * W), N)
    run = jax.jit(jax.vmap(lambda k: stochastic_beam_search(k, fn, W, D, V)))
    res = run(keys)
    assert np.all(np.asarray(res.valid))
    samples = [tuple(tuple(s) for s in row) for row in np.asarray(res.sequences).tolist()]
    out = _chi_square_tuples(samples, law)
    assert out.passed, (V, D, W, out.p_value)
    # scores: phi = log q(s) exactly, perturbed scores in decreasing order
    lq = {s: np.log(p) for s, p in zip(seqs, probs)}
    phi = np.asarray(res.log_probs)
    for b in range(5):
        for j, s in enumerate(samples[b]):
            np.testing.assert_allclose(phi[b, j], lq[s], atol=1e-12)
    G = np.asarray(res.perturbed)
    assert np.all(np.diff(G, axis=1) <= 0)


def test_beam_levels_are_consistent():
    V, D, W = 3, 3, 3
    lm = TableLM.random(V, D, seed=2, zero_prob=0.2)
    res = jax.jit(jax.vmap(lambda k: stochastic_beam_search(k, table_log_probs_fn(lm, D), W, D, V)))(
        jax.random.split(jax.random.key(0), 50))
    tok, par, G, val = (np.asarray(a) for a in (res.level_tokens, res.level_parents, res.level_perturbed,
                                                    res.level_valid))
    for b in range(50):
        assert np.all(par[b, 0] == -1)
        # final sequences are the backtracked paths
        for w in range(W):
            if not res.valid[b, w]:
                continue
            path, slot = [], w
            for t in range(D - 1, -1, -1):
                path.append(tok[b, t, slot])
                slot = par[b, t, slot]
            np.testing.assert_array_equal(path[::-1], np.asarray(res.sequences[b, w]))
        for t in range(1, D):
            for w in range(W):
                if not val[b, t, w]:
                    continue
                parent = par[b, t, w]
                assert val[b, t - 1, parent]
                assert G[b, t, w] <= G[b, t - 1, parent] + 1e-12
            # a kept parent with kept children passes its G to its best child
            for parent in range(W):
                kids = [w for w in range(W) if val[b, t, w] and par[b, t, w] == parent]
                if kids:
                    np.testing.assert_allclose(max(G[b, t, w] for w in kids), G[b, t - 1, parent], atol=1e-12)
        # no duplicate prefixes within a level
        for t in range(D):
            kept = [(par[b, t, w], tok[b, t, w]) for w in range(W) if val[b, t, w]]
            assert len(set(kept)) == len(kept)


def test_beam_search_forms_jit_vmap_and_short_support():
    V, D, W = 3, 2, 4
    # only 3 sequences of positive probability: the 4th slot must be invalid
    lm = TableLM(V, {(): [0.5, 0.5, 0.0], (0,): [1.0, 0.0, 0.0], (1,): [0.0, 0.3, 0.7]})
    fn = table_log_probs_fn(lm, D)
    keys = jax.random.split(jax.random.key(9), 2)
    for key in keys[:1]:
        a = stochastic_beam_search(key, fn, W, D, V)
        g = jax.random.gumbel(key, (D, W, V), jnp.float64)
        b = jax.jit(stochastic_beam_search_with_gumbels, static_argnums=(1, 2, 3))(g, fn, W, D)
        for x in (b,):  # b is jitted: key form (eager) == explicit-noise form (jit)
            np.testing.assert_array_equal(np.asarray(x.sequences), np.asarray(a.sequences))
            np.testing.assert_array_equal(np.asarray(x.perturbed), np.asarray(a.perturbed))
        np.testing.assert_array_equal(np.asarray(a.valid), [True, True, True, False])
        assert np.all(np.isfinite(np.asarray(a.perturbed[:3])))
        assert {tuple(s) for s in np.asarray(a.sequences[:3]).tolist()} == {(0, 0), (1, 1), (1, 2)}
    batched = jax.jit(jax.vmap(lambda k: stochastic_beam_search(k, fn, W, D, V)))(keys)
    one = jax.jit(lambda k: stochastic_beam_search(k, fn, W, D, V))
    for i, key in enumerate(keys):
        np.testing.assert_array_equal(np.asarray(batched.sequences[i]), np.asarray(one(key).sequences))
