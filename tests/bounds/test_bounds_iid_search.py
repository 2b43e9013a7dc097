"""The sort-free i.i.d. search of ``optimal_acceptance`` against independent routes.

References here never go through the threshold search: a NumPy sort of ``p/q`` with float64
prefix sums, and the package's own sort-and-scan path (``_sorted_core``), which the brute-force
and LP tests in ``test_bounds_exact.py`` check separately. The laws include cases built to be
hard for a search over thresholds: many near-equal local minima, heavy single tokens, exact
ties, and the flat objective ``p == q``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from spectheory.bounds import optimal_acceptance
from spectheory.bounds import _optimal


def numpy_iid(p, q, n):
    """1 + min over prefixes of the p/q order (q = 0 last) of P_m - Q_m^n, in float64."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    key = np.where(q > 0, p / np.where(q > 0, q, 1), np.inf)
    o = np.argsort(key, kind="stable")
    P = np.concatenate([[0.0], np.cumsum(p[o])])
    Q = np.concatenate([[0.0], np.cumsum(q[o])])
    return 1 + float(np.min(P - Q**n))


def set_value(p, q, H, n):
    H = np.asarray(H, bool)
    return 1 + float(np.sum(p[H])) - float(np.sum(q[H])) ** n


def wiggly(m, n, seed):
    """A law whose prefix objective has ~m/4 local minima of nearly equal depth.

    ``m`` tokens of equal draft mass; the target's prefix sums follow ``Q^n`` plus, for
    ``0.4 <= Q <= 0.95``, an alternating bump (as large as convexity of the prefix curve
    allows) and a shallow parabola (so one minimum is global); then a random tail of small
    tokens. The p/q order of the head follows the construction (checked).
    """
    rng = np.random.default_rng(seed)
    Qk = np.arange(m + 1) / m
    band = (Qk >= 0.4) & (Qk <= 0.95)
    delta = 0.1 * np.min(np.diff(Qk[band] ** n, 2)) / 4
    bump = delta * band * ((np.arange(m + 1) % 2) + 0.2 * (Qk - rng.uniform(0.5, 0.9)) ** 2)
    Pk = Qk**n + bump
    p_head = np.diff(Pk)
    q_head = np.full(m, 1.0 / m)
    assert np.all(np.diff(p_head / q_head) > 0), "construction must keep the p/q order"
    tail = rng.dirichlet(np.ones(3 * m) * 0.3)
    p = np.concatenate([p_head, 0.05 * tail])
    q = np.concatenate([q_head, 0.05 * rng.permutation(tail)])
    perm = rng.permutation(p.size)
    return p[perm] / p.sum(), q[perm] / q.sum()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [2, 5, 8])
def test_many_local_minima(seed, n):
    p, q = wiggly(400, n, seed=seed)
    res = optimal_acceptance(p, q, n, "iid")
    want = numpy_iid(p, q, n)
    assert abs(float(res.value) - want) < 1e-12
    assert abs(set_value(p, q, res.certificate, n) - want) < 1e-12
    value, _, converged = _optimal._iid_search(jnp.asarray(p)[None], jnp.asarray(q)[None], n)
    assert bool(converged[0]), "the search itself must certify (not the sort fallback)"
    assert abs(float(value[0]) - want) < 1e-12


@pytest.mark.parametrize("case", ["equal", "one_hot_q", "one_hot_p", "heavy_atoms", "ties", "zeros"])
@pytest.mark.parametrize("n", [2, 3, 8])
def test_structured_laws(case, n):
    rng = np.random.default_rng(7)
    V = 3000
    p = rng.dirichlet(np.ones(V) * 0.2)
    q = rng.dirichlet(np.ones(V) * 0.2)
    if case == "equal":
        q = p.copy()
    elif case == "one_hot_q":
        q = np.eye(V)[17]
    elif case == "one_hot_p":
        p = np.eye(V)[17]
    elif case == "heavy_atoms":
        p[:3] += [2.0, 1.0, 0.5]
        q[1:4] += [0.5, 2.0, 1.0]
        p, q = p / p.sum(), q / q.sum()
    elif case == "ties":  # ratios from a handful of values, masses from a handful of values
        q = rng.integers(1, 4, V).astype(float)
        p = q * rng.integers(1, 5, V)
        p, q = p / p.sum(), q / q.sum()
    elif case == "zeros":
        p[rng.random(V) < 0.3] = 0
        q[rng.random(V) < 0.3] = 0
        p, q = p / p.sum(), q / q.sum()
    res = optimal_acceptance(p, q, n, "iid")
    want = numpy_iid(p, q, n)
    assert abs(float(res.value) - want) < 1e-12
    assert abs(set_value(p, q, res.certificate, n) - want) < 1e-12


@settings(max_examples=12)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([2, 3, 8]),
    st.sampled_from([0.05, 0.5, 3.0]),
    st.sampled_from([0.0, 0.5, 2.0]),
)
def test_matches_sorted_path(seed, n, conc, noise):
    """Random LM-like and Dirichlet laws (V = 500..2000 zero-padded to 2048, batch 3): the
    threshold search equals the sort-and-scan path to 1e-12 in float64, every row certified by
    the search itself."""
    rng = np.random.default_rng(seed)
    V = int(rng.integers(500, 2001))
    if noise == 0.0:
        p = rng.dirichlet(np.ones(V) * conc, 3)
        q = rng.dirichlet(np.ones(V) * conc, 3)
    else:
        logits = rng.standard_normal((3, V)) / conc
        p = np.exp(logits - logits.max(-1, keepdims=True))
        ql = logits + noise * rng.standard_normal((3, V))
        q = np.exp(ql - ql.max(-1, keepdims=True))
        p, q = p / p.sum(-1, keepdims=True), q / q.sum(-1, keepdims=True)
    pad = ((0, 0), (0, 2048 - V))  # one jit shape for every example
    p, q = np.pad(p, pad), np.pad(q, pad)
    P, Q = jnp.asarray(p), jnp.asarray(q)
    value, H, converged = _optimal._iid_search(P, Q, n)
    want, _ = _optimal._sorted_core(P, Q, n, "iid", None)
    assert bool(np.all(np.asarray(converged)))
    np.testing.assert_allclose(np.asarray(value), np.asarray(want), rtol=0, atol=1e-12)
    for i in range(3):
        assert abs(set_value(p[i], q[i], np.asarray(H[i]), n) - float(want[i])) < 1e-12


def test_float32_at_llm_scale():
    """V = 152,064 in float32: within 1e-5 of a float64 NumPy sort (inputs rounded to float32
    first, so both see the same laws)."""
    rng = np.random.default_rng(3)
    V = 152_064
    logits = rng.standard_normal((2, V)) * 3
    ql = logits + rng.standard_normal((2, V))
    p = np.exp(logits - logits.max(-1, keepdims=True))
    q = np.exp(ql - ql.max(-1, keepdims=True))
    p = (p / p.sum(-1, keepdims=True)).astype(np.float32)
    q = (q / q.sum(-1, keepdims=True)).astype(np.float32)
    for n in (2, 8):
        got = np.asarray(optimal_acceptance(p, q, n, "iid").value, np.float64)
        want = [numpy_iid(p[i], q[i], n) for i in range(2)]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_fallback_to_sort_when_not_certified(monkeypatch):
    """With no refinement passes allowed the search cannot certify; the core must then return
    the exact sorted result (a fresh V forces a new trace with the patched budget)."""
    monkeypatch.setattr(_optimal, "_IID_MAX_PASSES", 0)
    p, q = wiggly(200, 8, seed=11)
    _, _, converged = _optimal._iid_search(jnp.asarray(p)[None], jnp.asarray(q)[None], 8)
    assert not bool(converged[0])
    res = optimal_acceptance(p, q, 8, "iid")
    assert abs(float(res.value) - numpy_iid(p, q, 8)) < 1e-12
