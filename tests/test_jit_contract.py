"""The jit contract: under jax.jit (no value checks) no token id outside [0, V) but the flag -1,
no accepted out-of-range draft, NaN (or an all-zero target) in gives -1 out; legal input gives
the eager result at every temperature; ``spectheory.checked`` runs the front door's checks
inside jit and vmap.

Every rule is jitted once per shape: all cases of a rule are one batch of one vmapped call."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spectheory
from spectheory import verify

from _cases import random_pair

V = 5
BAD_IDS = (-1, -V - 1, V, V + 3)
_BUILTIN = {id(getattr(verify, name)) for name in verify.__all__}


def _jax_rules():
    """Every registered traceable rule: the built-ins keep the contract by construction, a
    rule registered from outside (the max-ratio example) through make_verifier's guard."""
    return [name for name in spectheory.rules() if not spectheory.rule(name).verifier.host_only]


def _cases(rule, n):
    """Rows (u, p, q, drafts, kind, detail) of one shape: legal, out-of-range drafts, NaN laws,
    all-zero laws, invalid uniforms."""
    p, q = random_pair(V, 3)
    d = np.asarray(rule.drafts.sample(jax.random.key(1), jnp.asarray(q), n))
    m = rule.verifier.num_uniforms(n)
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(4):
        rows.append((rng.random(m), p, q, d, "legal", None))
    for j in range(n):
        for bad in BAD_IDS:
            db = d.copy()
            db[j] = bad
            for u in (np.zeros(m), rng.random(m)):  # u = 0 passes every coin of positive mass
                rows.append((u, p, q, db, "bad_draft", j))
    u = rng.random(m)
    nan = np.full(V, np.nan)
    rows += [(u, nan, q, d, "flag", "p NaN"), (u, p, nan, d, "flag", "q NaN"),
             (u, np.zeros(V), q, d, "flag", "p all zero"), (u, p, np.zeros(V), d, "range", "q all zero")]
    for i in range(V):
        rows.append((u, np.where(np.arange(V) == i, np.nan, p), q, d, "flag", f"p[{i}] NaN"))
        rows.append((u, p, np.where(np.arange(V) == i, np.nan, q), d, "flag", f"q[{i}] NaN"))
    for bad_u in (np.nan, 1.5, -0.25, 1.0):
        rows.append((np.where(np.arange(m) == m - 1, bad_u, u), p, q, d, "flag", f"u = {bad_u}"))
    return rows


@pytest.mark.parametrize("name", _jax_rules())
def test_rules_under_jit_emit_only_vocabulary_ids_or_the_flag(name):
    rule = spectheory.rule(name)
    ns = [rule.fixed_n] if rule.fixed_n else [2, 3]
    for n in ns:
        rows = _cases(rule, n)
        u, p, q, d = (jnp.asarray(np.stack([r[i] for r in rows])) for i in range(4))
        d = d.astype(jnp.int32)
        out = jax.jit(jax.vmap(rule.verifier.verify_with_uniforms))(u, p, q, d)
        tok, idx = np.asarray(out.token), np.asarray(out.index)
        for i, (_, _, _, dr, kind, detail) in enumerate(rows):
            msg = f"{name} n={n} {kind} {detail} drafts={dr.tolist()}: token {tok[i]}, index {idx[i]}"
            assert -1 <= tok[i] < V, msg
            if idx[i] >= 0:
                assert tok[i] == dr[idx[i]] and 0 <= dr[idx[i]] < V, msg
            if kind == "legal":
                assert tok[i] >= 0, msg
                eager = rule.verifier.verify_with_uniforms(jnp.asarray(rows[i][0]), jnp.asarray(rows[i][1]),
                                                           jnp.asarray(rows[i][2]), jnp.asarray(dr))
                assert (int(eager.token), int(eager.index)) == (tok[i], idx[i]), msg
            elif kind == "bad_draft":
                assert idx[i] != detail, msg
            elif kind == "flag":
                assert (tok[i], idx[i]) == (-1, -1), msg


def test_single_rejects_an_out_of_range_draft_with_certainty():
    """A draft outside [0, V) is a token of zero mass: the single-draft kernel is then the
    normalised residual (p - q)+, computed here in NumPy."""
    p, q = random_pair(V, 4)
    r = np.maximum(p - q, 0)
    r /= r.sum()
    kern = jax.jit(jax.vmap(verify.SINGLE.kernel, in_axes=(None, None, 0)))
    K = kern(jnp.asarray(p), jnp.asarray(q), jnp.array([[b] for b in BAD_IDS]))
    np.testing.assert_allclose(np.asarray(K), np.tile(r, (len(BAD_IDS), 1)), atol=1e-12)


@pytest.mark.parametrize("name", [n for n in _jax_rules() if id(spectheory.rule(n).verifier) in _BUILTIN])
def test_kernels_of_nan_laws_are_nan(name):
    rule = spectheory.rule(name)
    n = rule.fixed_n or 2
    p, q = random_pair(V, 5)
    d = np.asarray(rule.drafts.sample(jax.random.key(2), jnp.asarray(q), n))
    P = np.stack([np.full(V, np.nan), p, np.where(np.arange(V) == d[0], np.nan, p)])
    Q = np.stack([q, np.full(V, np.nan), q])
    K = np.asarray(jax.jit(jax.vmap(rule.verifier.kernel, in_axes=(0, 0, None)))(P, Q, jnp.asarray(d)))
    assert np.all(np.isnan(K).any(axis=-1)), (name, K)


@pytest.mark.parametrize("name", [n for n in _jax_rules() if id(spectheory.rule(n).verifier) in _BUILTIN
                                  and spectheory.rule(n).verifier.acceptance is not None])
def test_closed_form_acceptances_of_nan_laws_are_nan(name):
    """A NaN anywhere in p or q (also where the rule zeroes q, e.g. the greedy set or the hub)
    gives a NaN acceptance under jit, never a plausible rate."""
    rule = spectheory.rule(name)
    n = rule.fixed_n or 2
    p, q = random_pair(V, 8)
    eye = np.eye(V, dtype=bool)
    P = np.concatenate([np.where(eye, np.nan, p), np.tile(p, (V, 1))])
    Q = np.concatenate([np.tile(q, (V, 1)), np.where(eye, np.nan, q)])
    alpha = np.asarray(jax.jit(lambda a, b: rule.verifier.acceptance(a, b, n))(P, Q))
    assert np.all(np.isnan(alpha)), (name, alpha)


def _chain_rows(g, V):
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(V), size=g + 1)
    q = 0.5 * p[:g] + 0.5 * rng.dirichlet(np.ones(V), size=g)
    d = np.array([rng.choice(V, p=q[i]) for i in range(g)])
    rows = [(rng.random(g + 1), p, q, d, "legal", None) for _ in range(3)]
    for j in range(g):
        for bad in BAD_IDS + (100,):
            db = d.copy()
            db[j] = bad
            rows.append((np.zeros(g + 1), p, q, db, "bad_draft", j))
    u = rng.random(g + 1)
    rows += [(u, np.full_like(p, np.nan), q, d, "flag", "p NaN"), (u, p, np.full_like(q, np.nan), d, "flag", "q NaN"),
             (u, np.zeros_like(p), q, d, "flag", "p all zero"), (u, p, np.zeros_like(q), d, "range", "q all zero"),
             (u, np.where(np.arange(V) == 1, np.nan, p), q, d, "flag", "p[:, 1] NaN"),
             (np.where(np.arange(g + 1) == 0, np.nan, u), p, q, d, "flag", "u NaN")]
    return rows


def _logits(p):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(p)


CHAIN_FNS = {
    "chain": verify.chain_with_uniforms,
    "block": verify.block_with_uniforms,
    "chain_from_logits": lambda u, p, q, d: verify.chain_from_logits_with_uniforms(u, p, q, d, 0.8),
    "chain_from_logits_top_k": lambda u, p, q, d: verify.chain_from_logits_with_uniforms(u, p, q, d, 1.0, 3),
}


@pytest.mark.parametrize("fn_name", list(CHAIN_FNS))
def test_chains_under_jit_emit_only_vocabulary_ids_or_the_flag(fn_name):
    g, Vc = 3, 4
    rows = _chain_rows(g, Vc)
    u, p, q, d = (np.stack([r[i] for r in rows]) for i in range(4))
    if fn_name.startswith("chain_from_logits"):
        p, q = _logits(p), _logits(q)
    fn = CHAIN_FNS[fn_name]
    out = jax.jit(jax.vmap(fn))(jnp.asarray(u), jnp.asarray(p), jnp.asarray(q), jnp.asarray(d, jnp.int32))
    toks, ks = np.asarray(out.tokens), np.asarray(out.num_accepted)
    for i, (_, _, _, dr, kind, detail) in enumerate(rows):
        t, k = toks[i], int(ks[i])
        msg = f"{fn_name} {kind} {detail} drafts={dr.tolist()}: tokens {t.tolist()}, k {k}"
        assert np.all((t >= -1) & (t < Vc)), msg
        assert 0 <= k <= g, msg
        if t[0] == -1:  # the flag: nothing emitted
            assert np.all(t == -1) and k == 0, msg
        else:
            np.testing.assert_array_equal(t[:k], dr[:k], err_msg=msg)
            assert np.all(t[: k + 1] >= 0) and np.all(t[k + 1:] == -1), msg
        if kind == "legal":
            assert t[0] >= 0, msg
        elif kind == "bad_draft":
            assert k <= detail, msg
        elif kind == "flag":
            assert np.all(t == -1), msg


def test_issue_examples_under_jit():
    p3 = jnp.full((3, 3), 1 / 3)
    out = jax.jit(verify.chain)(jax.random.key(0), p3, p3[:2], jnp.array([1, 100]))
    assert int(out.num_accepted) <= 1 and 100 not in out.tokens.tolist()
    assert all(0 <= t < 3 for t in out.tokens.tolist()[: int(out.num_accepted) + 1])
    out = jax.jit(verify.block)(jax.random.key(0), p3, p3[:2], jnp.array([-1, 0]))
    assert int(out.num_accepted) == 0 and 0 <= int(out.tokens[0]) < 3
    zero = jnp.zeros(1000)
    for ver, d in ((verify.SINGLE, jnp.array([3])), (verify.SPECINFER, jnp.array([3, 4]))):
        for law in (zero, jnp.full(1000, jnp.nan)):
            assert int(jax.jit(ver.verify)(jax.random.key(0), law, jnp.full(1000, 1e-3), d).token) == -1


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_tiny_temperatures_jit_equals_eager(dtype):
    """At T in {1e-4, 1e-6, 1e-8} the jitted chain equals the eager one; at T = 1e-8, where
    every top-two logit gap is far above T, both equal greedy verification (T = 0)."""
    g, Vt, B = 3, 64, 6
    k1, k2, k3 = jax.random.split(jax.random.key(11), 3)
    tl = (jax.random.normal(k1, (B, g + 1, Vt)) * 4).astype(dtype)
    dl = (tl[:, :g] + jax.random.normal(k2, (B, g, Vt)) * 0.5).astype(dtype)
    drafts = jnp.argmax(dl, axis=-1).astype(jnp.int32)
    keys = jax.random.split(k3, B)
    gaps = np.diff(np.sort(np.asarray(tl, np.float64), axis=-1)[..., -2:], axis=-1)
    assert gaps.min() > 1e-5
    greedy = [verify.chain_from_logits(keys[b], tl[b], dl[b], drafts[b], 0.0).tokens.tolist() for b in range(B)]
    for T in (1e-4, 1e-6, 1e-8):
        jitted = jax.jit(jax.vmap(lambda k, a, b, d: verify.chain_from_logits(k, a, b, d, T)))(keys, tl, dl, drafts)
        eager = [verify.chain_from_logits(keys[b], tl[b], dl[b], drafts[b], T).tokens.tolist() for b in range(B)]
        assert np.asarray(jitted.tokens).tolist() == eager, T
        if T == 1e-8:
            assert eager == greedy
        x = tl[0]
        law_j = jax.jit(lambda x: jax.nn.softmax(verify.warp_logits(x, T)))(x)
        law_e = jax.nn.softmax(verify.warp_logits(x, T))
        assert np.all(np.isfinite(np.asarray(law_j)))
        np.testing.assert_allclose(np.asarray(law_j), np.asarray(law_e), atol=1e-6)
        np.testing.assert_allclose(np.asarray(law_j).sum(axis=-1), 1, atol=1e-5)


# --- checked / checkify ----------------------------------------------------------------------

P3 = np.array([0.5, 0.3, 0.2])
Q3 = np.array([0.2, 0.3, 0.5])


@pytest.mark.parametrize("args,match", [
    ((np.array([0.5, np.nan, 0.5]), Q3, np.array([1])), "p: contains NaN or inf"),
    ((P3, np.array([1.2, -0.2, 0.0]), np.array([1])), "q: contains negative entries"),
    ((P3, np.array([0.5, 0.3, 0.3]), np.array([1])), "q: does not sum to 1"),
    ((P3, Q3, np.array([3])), r"drafts: token id out of range \[0, 3\)"),
    ((P3, Q3, np.array([-1])), r"drafts: token id out of range \[0, 3\)"),
])
def test_checked_raises_naming_the_argument_under_jit(args, match):
    f = spectheory.checked(verify.SINGLE.verify)
    with pytest.raises(ValueError, match=match):
        f(jax.random.key(0), *args)


def test_checked_uniforms_distinct_drafts_and_logits():
    with pytest.raises(ValueError, match=r"uniforms: values must lie in \[0, 1\)"):
        spectheory.checked(verify.SINGLE.verify_with_uniforms)(np.array([0.5, 1.0]), P3, Q3, np.array([1]))
    with pytest.raises(ValueError, match="drafts: draft ids must be distinct"):
        spectheory.checked(verify.RSD.verify)(jax.random.key(0), P3, Q3, np.array([1, 1]))
    with pytest.raises(ValueError, match="drafts: hub drafts must contain the hub"):
        spectheory.checked(verify.SPECHUB.verify)(jax.random.key(0), P3, Q3, np.array([0, 1]))
    tl = np.zeros((3, 4))
    with pytest.raises(ValueError, match="draft_logits: contains NaN"):
        spectheory.checked(verify.chain_from_logits)(jax.random.key(0), tl, np.full((2, 4), np.nan), np.array([0, 1]), 0.5)
    out = spectheory.checked(verify.chain_from_logits)(jax.random.key(0), tl, tl[:2], np.array([0, 1]), 0.5)
    want = verify.chain_from_logits(jax.random.key(0), tl, tl[:2], np.array([0, 1]), 0.5)
    np.testing.assert_array_equal(out.tokens, want.tokens)


def test_checked_under_vmap_checks_every_batch_element():
    B, g, Vb = 3, 2, 4
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(Vb), size=(B, g + 1))
    q = rng.dirichlet(np.ones(Vb), size=(B, g))
    d = rng.integers(0, Vb, size=(B, g))
    keys = jax.random.split(jax.random.key(0), B)
    f = spectheory.checked(jax.vmap(verify.chain))
    np.testing.assert_array_equal(f(keys, p, q, d).tokens, jax.vmap(verify.chain)(keys, p, q, d).tokens)
    bad = q.copy()
    bad[2, 1, 0] = -0.1
    with pytest.raises(ValueError, match="q: contains negative entries"):
        f(keys, p, bad, d)
    dd = d.copy()
    dd[1, 0] = Vb
    with pytest.raises(ValueError, match=r"drafts: token id out of range \[0, 4\)"):
        f(keys, p, q, dd)
    # eager vmap runs no value check (documented): the same call only keeps the jit contract
    out = jax.vmap(verify.chain)(keys, p, bad, dd)
    assert np.all(np.asarray(out.tokens) >= -1) and np.all(np.asarray(out.tokens) < Vb)
    with pytest.raises(ValueError, match="p: does not sum to 1"):
        spectheory.checked(jax.vmap(verify.BLOCK.kernel))(p * 1.1, q, d)


@pytest.mark.parametrize("name", [n for n in _jax_rules() if id(spectheory.rule(n).verifier) in _BUILTIN])
def test_checked_passes_legal_input_unchanged(name):
    rule = spectheory.rule(name)
    n = rule.fixed_n or 2
    p, q = random_pair(V, 6)
    d = rule.drafts.sample(jax.random.key(3), jnp.asarray(q), n)
    key = jax.random.key(4)
    got = spectheory.checked(rule.verifier.verify)(key, p, q, d)
    want = rule.verifier.verify(key, p, q, d)
    assert (int(got.token), int(got.index)) == (int(want.token), int(want.index))
    np.testing.assert_allclose(spectheory.checked(rule.verifier.kernel)(p, q, d), rule.verifier.kernel(p, q, d),
                               atol=1e-12)
    with pytest.raises(ValueError, match="p: contains NaN"):
        spectheory.checked(rule.verifier.kernel)(np.full(V, np.nan), q, d)


def test_plain_jit_stays_free_of_checks_after_a_checked_call():
    p = jnp.full((3, 3), 1 / 3)
    d = jnp.array([0, 1])
    spectheory.checked(verify.chain)(jax.random.key(0), p, p[:2], d)
    jaxpr = str(jax.make_jaxpr(verify.chain)(jax.random.key(0), p, p[:2], d))
    assert "check" not in jaxpr
    out = jax.jit(verify.chain)(jax.random.key(0), p, p[:2], d)
    np.testing.assert_array_equal(out.tokens, verify.chain(jax.random.key(0), p, p[:2], d).tokens)


def test_checkify_returns_the_error_for_your_own_jit():
    f = jax.jit(spectheory.checkify(verify.SINGLE.kernel))
    err, K = f(jnp.asarray(P3), jnp.asarray(Q3), jnp.array([0]))
    assert err.get() is None
    np.testing.assert_allclose(K, verify.SINGLE.kernel(P3, Q3, np.array([0])), atol=1e-12)
    err, _ = f(jnp.asarray(P3), jnp.asarray(Q3), jnp.array([7]))
    assert err.get().startswith("drafts: token id out of range [0, 3)")
