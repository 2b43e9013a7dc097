"""Block verification (Sun et al., ICLR 2025, arXiv 2403.10444): exact losslessness,
optimality against an LP over all lossless single-chain verifiers, and sampler checks."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

from spectheory.audit import chi_square_test, exact_chain
from spectheory.models import TableLM
from spectheory.verify import BLOCK, TOKEN, block, block_kernel, block_quantities, block_with_uniforms


def _models(V, gamma, seed, zero_prob=0.25, kind="random"):
    target = TableLM.random(V, gamma + 1, seed=seed, zero_prob=zero_prob)
    draft = TableLM.random(V, gamma, seed=seed + 1000, zero_prob=zero_prob)
    if kind == "equal":
        draft = target
    elif kind == "mix":
        draft = target.mix(draft, 0.5)
    elif kind == "point_target":
        rng = np.random.default_rng(seed)
        choice = {}

        def law(prefix):
            if prefix not in choice:
                choice[prefix] = int(rng.integers(V))
            return np.eye(V)[choice[prefix]]

        target = TableLM(V, law)
    elif kind == "point_draft":
        draft = TableLM(V, lambda prefix: np.eye(V)[len(prefix) % V])
    return target, draft


KINDS = ["random", "equal", "mix", "point_target", "point_draft"]


# --- independent oracles -------------------------------------------------------------------

def _chains(draft, gamma):
    """All draft chains of positive probability (plain itertools enumeration)."""
    V = draft.vocab_size
    for x in itertools.product(range(V), repeat=gamma):
        w = draft.sequence_prob(x)
        if w > 0:
            yield x, w


def _sum_expected_p(target, draft, gamma):
    r"""Right side of E[tau] = sum_i E[p_i(X^i)], with p_i in its unrolled form
    p_i = min(1, min_{j < i} M_b(x_{j+1..i} | x^j) / M_s(x_{j+1..i} | x^j))
    (Sun et al. 2025; the recursion p_i = min(1, p_{i-1} ratio_i) unrolled), by enumeration."""
    total = 0.0
    for x, w in _chains(draft, gamma):
        for i in range(1, gamma + 1):
            vals = [1.0]
            for j in range(i):
                num = target.sequence_prob(x[j:i], prefix=x[:j])
                den = draft.sequence_prob(x[j:i], prefix=x[:j])
                vals.append(num / den)
            total += w * min(vals)
    return total


def _lp_optimum(target, draft, gamma):
    r"""Best expected number of accepted drafts over ALL lossless single-chain verifiers.

    Variables: the joint law pi(x, tau, y) >= 0 of the draft chain x (drawn from the draft
    model), the number tau of drafts kept and the next token y; the verifier emits
    z = (x_1..x_tau, y). Constraints:

    * draft marginal: sum_{tau, y} pi(x, tau, y) = M_s(x) for every chain x;
    * losslessness at sequence level (the notion of a valid verification in Sun et al. 2025,
      Sec. 2: the emitted tokens, continued by the target, are distributed as the target):
      for every w in V^{gamma+1},
      sum_{x, tau, y : z prefix of w} pi(x, tau, y) M_b(w_{tau+2..} | z) = M_b(w).

    Objective: maximise E[tau] = sum pi(x, tau, y) tau. The verifier may use anything (the
    whole models, off-path probabilities); Sun et al. 2025 (Thm. 2) prove block verification
    optimal among valid verifiers, and this LP checks that claim on the instance.
    """
    V = target.vocab_size
    xs = list(_chains(draft, gamma))
    var = [(a, t, y) for a in range(len(xs)) for t in range(gamma + 1) for y in range(V)]
    rows, rhs = [], []
    for a, (x, w) in enumerate(xs):
        rows.append([1.0 if b == a else 0.0 for (b, _, _) in var])
        rhs.append(w)
    for wseq in itertools.product(range(V), repeat=gamma + 1):
        row = []
        for (a, t, y) in var:
            z = xs[a][0][:t] + (y,)
            row.append(target.sequence_prob(wseq[t + 1:], prefix=z) if wseq[:t + 1] == z else 0.0)
        rows.append(row)
        rhs.append(target.sequence_prob(wseq))
    c = -np.array([t for (_, t, _) in var], dtype=float)
    res = scipy.optimize.linprog(c, A_eq=np.array(rows), b_eq=np.array(rhs), bounds=(0, None), method="highs")
    assert res.status == 0, res.message
    return -res.fun


# --- exact audits --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("V,gamma", [(1, 2), (2, 1), (2, 3), (3, 2), (4, 2), (3, 3), (2, 0)])
def test_block_lossless_exact(V, gamma, kind):
    target, draft = _models(V, gamma, seed=10 * V + gamma, kind=kind)
    a = exact_chain(target, draft, gamma, BLOCK)
    assert a.max_error <= 1e-12, a.max_error
    total = sum(a.emitted.values())
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    np.testing.assert_allclose(a.expected_accepted, _sum_expected_p(target, draft, gamma), atol=1e-12)
    if kind == "equal":
        np.testing.assert_allclose(a.expected_accepted, gamma, atol=1e-12)


@settings(max_examples=8)
@given(V=st.integers(1, 4), gamma=st.integers(1, 3), seed=st.integers(0, 10_000),
       zero_prob=st.sampled_from([0.0, 0.3, 0.6]), kind=st.sampled_from(["random", "mix"]))
def test_block_lossless_and_never_worse_than_token(V, gamma, seed, zero_prob, kind):
    if V == 4 and gamma == 3:
        gamma = 2
    target, draft = _models(V, gamma, seed=seed, zero_prob=zero_prob, kind=kind)
    b = exact_chain(target, draft, gamma, BLOCK)
    t = exact_chain(target, draft, gamma, TOKEN)
    assert b.max_error <= 1e-12 and t.max_error <= 1e-12
    assert b.expected_accepted >= t.expected_accepted - 1e-12
    np.testing.assert_allclose(b.expected_accepted, _sum_expected_p(target, draft, gamma), atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_gamma_one_equals_token_verification(seed):
    target, draft = _models(4, 1, seed=seed)
    b = exact_chain(target, draft, 1, BLOCK)
    expected = np.sum(np.minimum(target.next_law(()), draft.next_law(())))  # 1 - TV
    np.testing.assert_allclose(b.expected_accepted, expected, atol=1e-12)
    np.testing.assert_allclose(exact_chain(target, draft, 1, TOKEN).expected_accepted, expected,
                               atol=1e-12)


@pytest.mark.parametrize("V,gamma", [(2, 3), (3, 3), (4, 2)])
def test_point_mass_target_equals_token_verification(V, gamma):
    target, draft = _models(V, gamma, seed=7, kind="point_target")
    # closed form: the target's sequence t is deterministic; drafts are accepted while they
    # follow it, so E[tau] = sum_i prod_{j <= i} M_s(t_j | t^{j-1}).
    t = []
    for _ in range(gamma):
        t.append(int(np.argmax(target.next_law(tuple(t)))))
    expected = sum(draft.sequence_prob(t[:i]) for i in range(1, gamma + 1))
    b = exact_chain(target, draft, gamma, BLOCK)
    tok = exact_chain(target, draft, gamma, TOKEN)
    np.testing.assert_allclose(b.expected_accepted, expected, atol=1e-12)
    np.testing.assert_allclose(tok.expected_accepted, expected, atol=1e-12)
    assert b.max_error <= 1e-12


def test_paper_motivating_example():
    """Sun et al. 2025, Sec. 1: context-free M_b = (1/3, 2/3), M_s = (2/3, 1/3), gamma = 2:
    token verification accepts 10/9 tokens on average, block verification 11/9."""
    target = TableLM.context_free([1 / 3, 2 / 3])
    draft = TableLM.context_free([2 / 3, 1 / 3])
    np.testing.assert_allclose(exact_chain(target, draft, 2, TOKEN).expected_accepted, 10 / 9, atol=1e-12)
    np.testing.assert_allclose(exact_chain(target, draft, 2, BLOCK).expected_accepted, 11 / 9, atol=1e-12)
    np.testing.assert_allclose(_lp_optimum(target, draft, 2), 11 / 9, atol=1e-9)


@pytest.mark.parametrize("V,gamma,seed,kind", [(2, 2, 0, "random"), (2, 3, 1, "mix"), (3, 2, 2, "random"),
                                               (3, 2, 3, "mix"), (2, 3, 4, "point_draft")])
def test_block_equals_lp_optimum(V, gamma, seed, kind):
    target, draft = _models(V, gamma, seed=seed, zero_prob=0.2, kind=kind)
    lp = _lp_optimum(target, draft, gamma)
    b = exact_chain(target, draft, gamma, BLOCK).expected_accepted
    t = exact_chain(target, draft, gamma, TOKEN).expected_accepted
    np.testing.assert_allclose(b, lp, atol=1e-8)
    assert t <= lp + 1e-8


# --- the sampler ---------------------------------------------------------------------------

def _chain_case(V, gamma, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(V) * 0.7, size=gamma + 1)
    q = 0.5 * rng.dirichlet(np.ones(V), size=gamma) + 0.5 * p[:gamma]
    p[0, 0] = 0.0
    p = p / p.sum(axis=1, keepdims=True)
    d = np.array([rng.choice(V, p=row) for row in q], dtype=np.int32)
    return p.astype(dtype), q.astype(dtype), d


@pytest.mark.parametrize("seed", [0, 1])
def test_chi_square_sampler_matches_kernel(seed):
    V, gamma, N = 4, 3, 20_000
    p, q, d = _chain_case(V, gamma, seed)
    K = np.asarray(block_kernel(p, q, d)).reshape(-1)
    keys = jax.random.split(jax.random.key(300 + seed), N)
    res = jax.jit(jax.vmap(block, in_axes=(0, None, None, None)))(keys, p, q, d)
    k = np.asarray(res.num_accepted)
    y = np.asarray(res.tokens)[np.arange(N), k]
    out = chi_square_test(k * V + y, K, alpha=1e-3)
    assert out.passed, (out.p_value, out.counts, out.expected)
    # accepted prefix equals the drafts
    toks = np.asarray(res.tokens)
    for i in range(gamma):
        np.testing.assert_array_equal(toks[k > i, i], d[i])


def test_key_form_jit_eager_vmap_loop():
    V, gamma, B = 5, 4, 5
    cases = [_chain_case(V, gamma, s) for s in range(B)]
    P = np.stack([c[0] for c in cases]); Q = np.stack([c[1] for c in cases]); D = np.stack([c[2] for c in cases])
    keys = jax.random.split(jax.random.key(1), B)
    loop = [block(k, p, q, d) for k, p, q, d in zip(keys, P, Q, D)]
    for k, p, q, d, r in zip(keys, P, Q, D, loop):
        u = jax.random.uniform(k, (gamma + 1,), jnp.float64)
        ru = jax.jit(block_with_uniforms)(u, p, q, d)
        np.testing.assert_array_equal(np.asarray(ru.tokens), np.asarray(r.tokens))
    jb = jax.jit(block)
    jitted = [jb(k, p, q, d) for k, p, q, d in zip(keys, P, Q, D)]
    for a, b in zip(jitted, loop):
        np.testing.assert_array_equal(np.asarray(a.tokens), np.asarray(b.tokens))
    batched = jax.jit(jax.vmap(block))(keys, P, Q, D)
    np.testing.assert_array_equal(np.asarray(batched.tokens), np.stack([np.asarray(r.tokens) for r in loop]))
    np.testing.assert_array_equal(np.asarray(batched.num_accepted), [int(r.num_accepted) for r in loop])
    Kb = jax.vmap(block_kernel)(P, Q, D)
    for b in range(B):
        np.testing.assert_allclose(Kb[b], block_kernel(P[b], Q[b], D[b]), atol=1e-14)


def _degenerate_cases(V=3, gamma=3):
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(V), size=gamma + 1)
    d = np.array([0, 1, 2][:gamma], dtype=np.int32)
    oh = np.eye(V)[np.array([0, 1, 2, 0][:gamma + 1])]
    q_zero = p[:gamma].copy()
    q_zero[:, 0] = 0.0
    q_zero /= q_zero.sum(axis=1, keepdims=True)
    return {
        "p_eq_q": (p, p[:gamma].copy(), d),
        "point_target_on_drafts": (oh, p[:gamma], d),
        "point_target_off_drafts": (oh[:, ::-1].copy(), p[:gamma], d),
        "point_both": (oh, oh[:gamma], d),
        "q_zero_at_draft": (p, q_zero, d),
        "p_zero_at_draft": (np.eye(V)[[1, 2, 0, 1][:gamma + 1]], p[:gamma], d),
    }


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_degenerate_never_nan(dtype):
    for name, (p, q, d) in _degenerate_cases().items():
        p, q = p.astype(dtype), q.astype(dtype)
        bq = block_quantities(p, q, d)
        K = np.asarray(block_kernel(p, q, d))
        for arr in (bq.p, bq.h, bq.residual, K):
            assert np.all(np.isfinite(np.asarray(arr))), name
        assert np.all(np.asarray(bq.h) >= 0) and np.all(np.asarray(bq.h) <= 1), name
        np.testing.assert_allclose(K.sum(), 1.0, atol=1e-6 if dtype == np.float32 else 1e-12, err_msg=name)
        for u in (np.zeros(4), np.full(4, 1 - 2.0**-24)):
            r = block_with_uniforms(u.astype(dtype), p, q, d)
            k = int(r.num_accepted)
            assert K[k, int(r.tokens[k])] > 0, name
    # p == q accepts everything
    p, q, d = _degenerate_cases()["p_eq_q"]
    np.testing.assert_allclose(block_kernel(p, q, d).sum(axis=1), [0, 0, 0, 1], atol=1e-12)


def test_float32_kernel_matches_float64():
    for s in range(4):
        p, q, d = _chain_case(5, 3, s)
        K64 = np.asarray(block_kernel(p, q, d))
        K32 = np.asarray(block_kernel(p.astype(np.float32), q.astype(np.float32), d))
        assert K32.dtype == np.float32
        np.testing.assert_allclose(K32, K64, atol=1e-5)


def test_input_validation():
    p, q, d = _chain_case(3, 2, 0)
    with pytest.raises(ValueError, match="gamma"):
        block_kernel(p[:2], q, d)
    with pytest.raises(ValueError, match="out of range"):
        block_kernel(p, q, np.array([0, 5], np.int32))
    with pytest.raises(ValueError, match="sum to 1"):
        block_kernel(p * 2, q, d)
    with pytest.raises(ValueError, match="shape"):
        block_with_uniforms(np.zeros(2), p, q, d)
