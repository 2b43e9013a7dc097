"""prompt_lookup against a plain-Python oracle; point-mass drafts are lossless under token
verification (exact, float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spectheory._core import accept_prob, normalize, residual_weights
from spectheory.models import point_mass, prompt_lookup


def oracle(ctx, length, gamma, max_ngram, min_ngram, pad=0):
    """The rule as written: longest suffix first, most recent earlier occurrence."""
    c = list(ctx[:length])
    for n in range(max_ngram, min_ngram - 1, -1):
        if n > len(c):
            continue
        suffix = c[len(c) - n:]
        for s in range(len(c) - n - 1, -1, -1):
            if c[s:s + n] == suffix:
                cont = c[s + n:s + n + gamma]
                return cont + [pad] * (gamma - len(cont)), len(cont), n
    return [pad] * gamma, 0, 0


_jitted = jax.jit(prompt_lookup, static_argnames=("num_drafts", "max_ngram", "min_ngram",
                                                  "pad_token"))


def run(ctx, length=None, **kw):
    d = _jitted(jnp.asarray(ctx), length, **kw)
    return d.tokens.tolist(), int(d.num_drafts), int(d.ngram)


def test_examples():
    # longest suffix [1, 2] recurs at 1..2: continue with what followed it
    assert run([5, 1, 2, 3, 9, 1, 2], num_drafts=3) == ([3, 9, 1], 3, 2)
    # the most recent occurrence wins: [7, 8] at 0 (-> 1) and at 3 (-> 2)
    assert run([7, 8, 1, 7, 8, 2, 7, 8], num_drafts=2, max_ngram=2) == ([2, 7], 2, 2)
    # a longer match beats a more recent shorter one
    assert run([1, 2, 3, 4, 0, 3, 5, 2, 3], num_drafts=1, max_ngram=2) == ([4], 1, 2)
    # the continuation runs into the suffix itself (repeats keep going)...
    assert run([1, 2, 1, 2, 1], num_drafts=3) == ([2, 1, 0], 2, 3)
    # ... and stops at the end of the context: filler past num_drafts
    assert run([1, 2, 3, 1], num_drafts=4, max_ngram=2, pad_token=9) == ([2, 3, 1, 9], 3, 1)
    # no earlier occurrence
    assert run([1, 2, 3], num_drafts=2) == ([0, 0], 0, 0)
    # min_ngram > every match length
    assert run([1, 2, 3, 1], num_drafts=2, min_ngram=2, max_ngram=3) == ([0, 0], 0, 0)
    # only the first `length` tokens are read
    assert run([1, 2, 1, 2, 1], length=3, num_drafts=2, max_ngram=1) == ([2, 1], 2, 1)
    assert run([1, 2, 3], length=0, num_drafts=2) == ([0, 0], 0, 0)


@given(
    ctx=st.lists(st.integers(0, 2), min_size=1, max_size=12),
    data=st.data(),
    gamma=st.integers(1, 4),
    ngrams=st.tuples(st.integers(1, 3), st.integers(0, 2)),
)
def test_matches_oracle(ctx, data, gamma, ngrams):
    length = data.draw(st.integers(0, len(ctx)))
    lo, extra = ngrams
    kw = dict(num_drafts=gamma, max_ngram=lo + extra, min_ngram=lo)
    padded = np.array(ctx + [0] * (12 - len(ctx)))  # one shape: one compilation
    assert run(padded, length, **kw) == oracle(ctx, length, gamma, lo + extra, lo)


def test_jit_and_vmap_equal_loop():
    rng = np.random.default_rng(0)
    ctx = rng.integers(0, 3, size=(6, 10))
    lengths = rng.integers(0, 11, size=6)
    f = jax.vmap(lambda c, n: prompt_lookup(c, n, num_drafts=3))
    eager = f(ctx, lengths)
    f = jax.jit(f)
    batched = f(ctx, lengths)
    for b in range(6):
        want = oracle(list(ctx[b]), int(lengths[b]), 3, 3, 1)
        got = (batched.tokens[b].tolist(), int(batched.num_drafts[b]), int(batched.ngram[b]))
        assert got == want
    for a, b in zip(eager, batched):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments():
    with pytest.raises(ValueError):
        prompt_lookup(jnp.zeros(4, int), num_drafts=2, min_ngram=3, max_ngram=2)
    with pytest.raises(ValueError):
        prompt_lookup(jnp.zeros((2, 4), int), num_drafts=2)


def test_point_mass_drafts_are_lossless_under_token_verification():
    """Accept x w.p. min(1, p(x)/q(x)) with q = δ_x, else sample norm((p - q)+): the output law
    p(x) δ_x + (1 - p(x)) norm((p - δ_x)+) is p, for every p and every (deterministic) x."""
    rng = np.random.default_rng(0)
    V = 5
    ps = [rng.dirichlet(np.ones(V)), np.eye(V)[2], np.full(V, 1 / V), np.array([0.5, 0.5, 0, 0, 0])]
    for p in map(jnp.asarray, ps):
        for x in range(V):
            q = point_mass(x, V, jnp.float64)
            np.testing.assert_array_equal(q, np.eye(V)[x])
            a = accept_prob(p[x], q[x])
            out = a * q + (1 - a) * normalize(residual_weights(p, q))
            np.testing.assert_allclose(out, p, atol=1e-15)
