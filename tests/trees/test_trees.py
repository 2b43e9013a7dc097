"""Draft trees and tree verification: exact sequence-level audits over TableLMs, pairing
checks, and sampler checks (chi-squared, jit/vmap, key vs uniforms)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spectheory
from spectheory.audit import chi_square_test, exact_chain, exact_tree
from spectheory.audit._tree import BUILDERS
from spectheory.models import TableLM
from spectheory.sampling import table_log_probs_fn
from spectheory.trees import (
    beam_tree,
    check_pairing,
    greedy_tree,
    gumbel_tree,
    iid_tree,
    node_paths,
    table_laws,
    tree_from_parents,
    tree_kernel,
    tree_num_uniforms,
    tree_verify,
    tree_verify_with_uniforms,
)
from spectheory.trees._verify import SCHEME_NAMES

from _tree_rules import GREEDY, RRS, RSD


def _models(V, D, seed, zero_prob=0.25):
    target = TableLM.random(V, D + 1, seed=seed, zero_prob=zero_prob)
    draft = TableLM.random(V, D, seed=seed + 500, zero_prob=zero_prob).mix(target, 0.4)
    return target, draft


# --- every available rule x every builder whose children law it assumes --------------------

def _rule_builder_cases():
    rules = [spectheory.rule(n) for n in spectheory.rules()] + [RRS, RSD, GREEDY]
    cases = []
    for r in rules:
        for builder, scheme in BUILDERS.items():
            if r.drafts.name not in SCHEME_NAMES[scheme]:
                continue
            if builder == "beam":
                for V, W, D in [(2, 2, 3), (3, 2, 2), (3, 3, 2)]:
                    if all(r.supports(m, V) for m in range(1, W + 1)):
                        cases.append((r, builder, V, dict(beam_width=W, depth=D)))
            else:
                for V, br in [(3, (1, 1, 1)), (3, (2, 2)), (2, (2, 1, 2)), (4, (3, 1))]:
                    if all(r.supports(b, V) for b in br):
                        cases.append((r, builder, V, dict(branching=br)))
    return cases


CASES = _rule_builder_cases()


@pytest.mark.parametrize("r,builder,V,kw", CASES,
                         ids=[f"{c[0].name}-{c[1]}-V{c[2]}-{'-'.join(map(str, c[3].values()))}" for c in CASES])
def test_exact_tree_audit_lossless(r, builder, V, kw):
    D = kw.get("depth") or len(kw["branching"])
    for seed in (0, 1):
        target, draft = _models(V, D, seed=seed + 10 * V)
        a = exact_tree(target, draft, r, builder, **kw)
        assert a.max_error <= 1e-12, (seed, a.max_error)
        np.testing.assert_allclose(sum(a.emitted.values()), 1.0, atol=1e-12)
        assert 0 <= a.expected_accepted <= D + 1e-12


def test_rule_builder_grid_covers_trees():
    names = {(c[0].name, c[1]) for c in CASES}
    assert ("single", "iid") in names and ("test-rrs", "iid") in names
    assert ("test-rsd", "gumbel") in names and ("test-rsd", "beam") in names
    assert ("test-greedy", "greedy") in names


@pytest.mark.parametrize("V,D", [(3, 3), (4, 2)])
def test_chain_as_tree_equals_token_verification(V, D):
    target, draft = _models(V, D, seed=3)
    t = exact_tree(target, draft, "single", "iid", branching=(1,) * D)
    c = exact_chain(target, draft, D, method="token")
    np.testing.assert_allclose(t.expected_accepted, c.expected_accepted, atol=1e-12)
    keys = set(t.emitted) | set(c.emitted)
    for k in keys:
        np.testing.assert_allclose(t.emitted.get(k, 0.0), c.emitted.get(k, 0.0), atol=1e-13)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_depth_one_rrs_matches_closed_form(n):
    """Depth-1 tree, n i.i.d. children, RRS: E[accepted] = 1 - prod_j (1 - sum min(p_j, q))
    with p_{j+1} = norm((p_j - q)+) (SpecInfer; THEORY Sec. 3), computed here by hand."""
    V = 4
    target, draft = _models(V, 1, seed=n, zero_prob=0.0)
    p, q = target.next_law(()), draft.next_law(())
    rej, pj = 1.0, p.copy()
    for _ in range(n):
        rej *= 1 - np.minimum(pj, q).sum()
        w = np.maximum(pj - q, 0)
        pj = w / w.sum() if w.sum() > 0 else pj
    a = exact_tree(target, draft, RRS, "iid", branching=(n,))
    np.testing.assert_allclose(a.expected_accepted, 1 - rej, atol=1e-12)


def test_beam_tree_audit_depth_one_equals_rsd_on_plackett_luce():
    """With depth 1 the beam tree is W draws without replacement, so its expected accepted
    length equals the one-position exact audit of RSD with the Plackett-Luce draft law."""
    V, W = 4, 3
    target, draft = _models(V, 1, seed=5, zero_prob=0.0)
    a = exact_tree(target, draft, RSD, "beam", beam_width=W, depth=1)
    b = exact_tree(target, draft, RSD, "gumbel", branching=(W,))
    one = spectheory.audit.exact(RSD, target.next_law(()), draft.next_law(()), W)
    np.testing.assert_allclose(a.expected_accepted, one.acceptance, atol=1e-12)
    np.testing.assert_allclose(b.expected_accepted, one.acceptance, atol=1e-12)


def test_more_branches_accept_more():
    target, draft = _models(3, 2, seed=8)
    e = [exact_tree(target, draft, RRS, "iid", branching=(b, b)).expected_accepted for b in (1, 2, 3)]
    assert e[0] <= e[1] + 1e-12 <= e[2] + 2e-12


# --- pairing ------------------------------------------------------------------------------

def test_mismatched_pairing_is_refused():
    parents = [-1, -1, 0, 0, 1, 1]
    iid = tree_from_parents([0, 1, 0, 1, 2, 0], parents, "iid")
    wor = tree_from_parents([0, 1, 0, 1, 2, 0], parents, "without_replacement")
    gr = tree_from_parents([0, 1, 0, 1, 2, 0], parents, "greedy")
    chain = tree_from_parents([0, 1], [-1, 0], "iid")
    with pytest.raises(ValueError, match="without_replacement"):
        check_pairing(iid, RSD, 3)
    with pytest.raises(ValueError, match="iid"):
        check_pairing(wor, RRS, 3)
    with pytest.raises(ValueError, match="greedy"):
        check_pairing(gr, RSD, 3)
    with pytest.raises(ValueError, match="without_replacement"):
        check_pairing(wor, GREEDY, 3)
    check_pairing(gr, GREEDY, 3)
    with pytest.raises(ValueError, match="not defined for"):
        check_pairing(iid, "single", 3)
    check_pairing(chain, "single", 3)
    with pytest.raises(ValueError, match="assumes draft scheme"):
        exact_tree(TableLM.context_free([0.5, 0.5]), TableLM.context_free([0.5, 0.5]), RRS, "beam",
                   beam_width=2, depth=2)
    with pytest.raises(ValueError):
        tree_verify(jax.random.key(0), iid, np.full((7, 3), 1 / 3), np.full((7, 3), 1 / 3), RSD)


# --- builders -----------------------------------------------------------------------------

def test_builders_structure():
    V = 3
    lm = TableLM(V, {(): [0.6, 0.4, 0.0]}, default=[0.2, 0.3, 0.5])
    fn = table_log_probs_fn(lm, 3)
    built = {}
    for build in (iid_tree, gumbel_tree, greedy_tree):
        tree, q = jax.jit(lambda k: build(k, fn, (3, 2), V))(jax.random.key(1))
        built[build] = tree
        assert tree.token.shape == (9,) and tree.children.shape == (10, 3) and q.shape == (10, V)
        valid = np.asarray(tree.valid)
        paths = node_paths(tree)
        for i, path in enumerate(paths):
            if valid[i]:
                assert lm.sequence_prob(path) > 0
                assert len(path) == int(tree.depth[i])
        # children rows list valid children first, and num_children counts them
        ch = np.asarray(tree.children)
        for r in range(10):
            m = int(tree.num_children[r])
            assert np.all(ch[r, :m] >= 0) and np.all(ch[r, m:] == -1)
        np.testing.assert_allclose(np.asarray(q[0]), [0.6, 0.4, 0.0], atol=1e-12)
    wor = built[gumbel_tree]
    assert int(wor.num_children[0]) == 2  # only two tokens of positive mass at the root
    gr = built[greedy_tree]
    assert np.asarray(gr.token)[:2].tolist() == [0, 1]
    ch1 = np.asarray(gr.children)[1]
    assert np.asarray(gr.token)[ch1[0]] == 2  # the most likely token after (0,)


def test_beam_tree_matches_beam_search():
    V, W, D = 3, 3, 3
    lm = TableLM.random(V, D, seed=4, zero_prob=0.2)
    fn = table_log_probs_fn(lm, D)
    tree, q = jax.jit(lambda k: beam_tree(k, fn, W, D, V))(jax.random.key(2))
    res = jax.jit(lambda k: spectheory.sampling.stochastic_beam_search(k, fn, W, D, V))(jax.random.key(2))
    paths = node_paths(tree)
    final = {tuple(s) for s, ok in zip(np.asarray(res.sequences).tolist(), np.asarray(res.valid)) if ok}
    assert final <= {p for p in paths if p is not None}
    for i, path in enumerate(paths):
        if path is not None and len(path) < D and int(tree.num_children[i + 1]) > 0:
            np.testing.assert_allclose(np.asarray(q[i + 1]), lm.next_law(path), atol=1e-12)


# --- the sampler --------------------------------------------------------------------------

def _fixed_tree_case():
    V = 3
    target, draft = _models(V, 2, seed=11, zero_prob=0.0)
    # a hand-made tree: two root children (i.i.d. drafts may repeat: 1, 1), children below
    tree = tree_from_parents([1, 1, 0, 2, 2], [-1, -1, 0, 0, 1], "iid")
    p = table_laws(target, tree)
    q = np.stack([draft.next_law(())] + [draft.next_law(path) for path in node_paths(tree)])
    return tree, p, q


def test_chi_square_tree_sampler_against_tree_kernel():
    tree, p, q = _fixed_tree_case()
    law = tree_kernel(tree, p, q, RRS)
    np.testing.assert_allclose(sum(law.values()), 1.0, atol=1e-12)
    N = 20_000
    keys = jax.random.split(jax.random.key(5), N)
    res = jax.jit(jax.vmap(lambda k: tree_verify(k, tree, p, q, RRS)))(keys)
    toks = np.asarray(res.tokens)
    k = np.asarray(res.num_accepted)
    seqs = [tuple(toks[i, :k[i] + 1].tolist()) for i in range(N)]
    keys_ = list(law)
    idx = {s: i for i, s in enumerate(keys_)}
    assert all(s in idx for s in seqs)
    out = chi_square_test(np.array([idx[s] for s in seqs]), np.array([law[s] for s in keys_]), alpha=1e-3)
    assert out.passed, out.p_value


def test_end_to_end_beam_tree_rsd_emits_exact_audit_law():
    """Builder + verifier under jit/vmap against the exact audit's emitted law (chi-squared,
    alpha = 1e-3, fixed keys): ties the samplers to the enumeration."""
    V, W, D = 2, 2, 2
    target, draft = _models(V, D, seed=21)
    audit = exact_tree(target, draft, RSD, "beam", beam_width=W, depth=D)
    fn = table_log_probs_fn(draft, D)
    # target laws at every prefix up to length D, gathered by code like the draft table
    tfn = table_log_probs_fn(target, D + 1)

    def one(key):
        kb, kv = jax.random.split(key)
        tree, q = beam_tree(kb, fn, W, D, V)
        # rows: root, then node i at row i+1, from the node's path (level-order layout)
        N = W * D
        paths = jnp.zeros((N, D), jnp.int32)
        rows = [jnp.exp(tfn(jnp.zeros((1, 0), jnp.int32)))[0]]
        for i in range(N):
            t = i // W + 1
            par = tree.parent[i]
            prev = jnp.where(par >= 0, paths[jnp.maximum(par, 0)], 0)
            path = prev.at[t - 1].set(tree.token[i])
            paths = paths.at[i].set(path)
            row = jnp.exp(tfn(path[None, :t]))[0]
            rows.append(jnp.where(tree.valid[i], row, 1.0 / V))
        p = jnp.stack(rows)
        r = tree_verify(kv, tree, p, q, RSD)
        return r.tokens, r.num_accepted

    N = 20_000
    toks, k = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(77), N))
    toks, k = np.asarray(toks), np.asarray(k)
    seqs = [tuple(toks[i, :k[i] + 1].tolist()) for i in range(N)]
    law = audit.emitted
    keys_ = list(law)
    idx = {s: i for i, s in enumerate(keys_)}
    assert all(s in idx for s in seqs)
    out = chi_square_test(np.array([idx[s] for s in seqs]), np.array([law[s] for s in keys_]), alpha=1e-3)
    assert out.passed, out.p_value
    np.testing.assert_allclose(k.mean(), audit.expected_accepted, atol=4 * k.std() / np.sqrt(N))


def test_tree_verify_forms_jit_vmap():
    tree, p, q = _fixed_tree_case()
    n_u = tree_num_uniforms(tree, RRS, 3)
    assert n_u == (tree.max_depth + 1) * 3
    keys = jax.random.split(jax.random.key(0), 6)
    loop = []
    jitted = jax.jit(tree_verify, static_argnums=4)
    for i, key in enumerate(keys[:2]):
        a = tree_verify(key, tree, p, q, RRS) if i == 0 else jitted(key, tree, p, q, RRS)
        b = jax.jit(tree_verify_with_uniforms, static_argnums=4)(
            jax.random.uniform(key, (n_u,), jnp.float64), tree, p, q, RRS)
        c = jitted(key, tree, p, q, RRS)
        for x in (b, c):
            np.testing.assert_array_equal(np.asarray(x.tokens), np.asarray(a.tokens))
            np.testing.assert_array_equal(np.asarray(x.nodes), np.asarray(a.nodes))
        loop.append(a)
        # the accepted nodes carry the emitted tokens
        kk = int(a.num_accepted)
        for j in range(kk):
            assert int(tree.token[int(a.nodes[j])]) == int(a.tokens[j])
    batched = jax.jit(jax.vmap(lambda k: tree_verify(k, tree, p, q, RRS)))(keys[:2])
    np.testing.assert_array_equal(np.asarray(batched.tokens), np.stack([np.asarray(x.tokens) for x in loop]))
    # vmap over a batch of trees and laws
    fn = table_log_probs_fn(TableLM.random(3, 2, seed=1), 2)
    trees, qs = jax.jit(jax.vmap(lambda k: gumbel_tree(k, fn, (2, 2), 3)))(jax.random.split(jax.random.key(1), 4))
    ps = qs  # any valid laws
    out = jax.jit(jax.vmap(lambda k, t, pp, qq: tree_verify(k, t, pp, qq, RSD)))(keys[:4], trees, ps, qs)
    one = jax.jit(lambda k, t, pp, qq: tree_verify(k, t, pp, qq, RSD))
    for i in range(4):
        t_i = jax.tree_util.tree_map(lambda a: a[i], trees)
        single = one(keys[i], t_i, ps[i], qs[i])
        np.testing.assert_array_equal(np.asarray(out.tokens[i]), np.asarray(single.tokens))


@pytest.mark.parametrize("build,scheme_law", [("greedy", "greedy"), ("gumbel", "pl")])
def test_builder_children_match_the_audited_law(build, scheme_law):
    """The children the jitted builders draw at the root follow the law the exact audit
    enumerates (chi-squared on ordered tuples, alpha = 1e-3, fixed key)."""
    V, b = 4, 3
    q = np.array([0.1, 0.4, 0.1, 0.4])  # ties: greedy keeps the lower ids first
    fn = table_log_probs_fn(TableLM.context_free(q), 1)
    builder = {"greedy": greedy_tree, "gumbel": gumbel_tree}[build]
    trees, _ = jax.jit(jax.vmap(lambda k: builder(k, fn, (b,), V)))(jax.random.split(jax.random.key(3), 20_000))
    toks = [tuple(r) for r in np.asarray(trees.token).tolist()]
    from spectheory.audit import greedy_law
    from spectheory.sampling import plackett_luce_law
    tuples, probs = greedy_law(q, b) if scheme_law == "greedy" else plackett_luce_law(q, b)
    idx = {tuple(int(x) for x in t): i for i, t in enumerate(tuples)}
    assert all(t in idx for t in toks)
    out = chi_square_test(np.array([idx[t] for t in toks]), probs, alpha=1e-3)
    assert out.passed, out.p_value


def test_float32_tree_verify():
    """float32 laws: emitted sequences have positive exact probability, and the decisions
    agree with float64 on the same uniforms except near boundaries."""
    tree, p, q = _fixed_tree_case()
    law = tree_kernel(tree, p, q, RRS)
    n_u = tree_num_uniforms(tree, RRS, 3)
    U = np.asarray(jax.random.uniform(jax.random.key(8), (40, n_u), jnp.float32))
    run = jax.jit(jax.vmap(lambda u, pp, qq: tree_verify_with_uniforms(u, tree, pp, qq, RRS), in_axes=(0, None, None)))
    r32 = run(U, p.astype(np.float32), q.astype(np.float32))
    r64 = run(U.astype(np.float64), p, q)
    t32, k32 = np.asarray(r32.tokens), np.asarray(r32.num_accepted)
    for i in range(40):
        assert law.get(tuple(t32[i, :k32[i] + 1].tolist()), 0.0) > 0
    assert np.mean(np.all(t32 == np.asarray(r64.tokens), axis=1)) >= 0.9


# --- the registered rules -----------------------------------------------------------------

def _tree_carriable(r):
    return (not r.verifier.host_only) and any(r.drafts.name in names for names in SCHEME_NAMES.values())


def test_registered_tree_rules_are_in_the_lossless_grid():
    """Every registered JAX rule whose draft scheme a tree carries is audited lossless by
    ``test_exact_tree_audit_lossless`` with every builder drawing that scheme."""
    registered = [spectheory.rule(n) for n in spectheory.rules()]
    carriable = [r for r in registered if _tree_carriable(r)]
    assert {r.name for r in carriable} >= {"single", "specinfer", "rsd", "spectr", "greedy"}
    covered = {(c[0].name, c[1]) for c in CASES}
    for r in carriable:
        builders = [b for b, s in BUILDERS.items() if r.drafts.name in SCHEME_NAMES[s]]
        assert builders, r.name
        for b in builders:
            assert (r.name, b) in covered, (r.name, b)


def test_registered_rules_on_one_pair_lossless_and_mismatch_refused():
    """Registered rules by name on one small TableLM pair: lossless at sequence level on their
    own trees, ValueError on a tree drawing another law."""
    V, D = 3, 2
    target, draft = _models(V, D, seed=42)
    own = {"specinfer": ("iid", dict(branching=(2, 2))), "spectr": ("iid", dict(branching=(2, 2))),
           "rsd": ("gumbel", dict(branching=(2, 2))), "greedy": ("greedy", dict(branching=(2, 2)))}
    own["rsd-beam"] = ("beam", dict(beam_width=2, depth=D))
    for name, (builder, kw) in own.items():
        a = exact_tree(target, draft, name.split("-")[0], builder, **kw)
        assert a.max_error <= 1e-12, (name, a.max_error)
        assert 0 < a.expected_accepted <= D + 1e-12
    # two children at every node with SpecInfer (RRS) accept at least as much as the chain
    c = exact_chain(target, draft, D, method="token")
    a = exact_tree(target, draft, "specinfer", "iid", branching=(2, 2))
    assert a.expected_accepted >= c.expected_accepted - 1e-12
    for name, builder in [("rsd", "iid"), ("specinfer", "gumbel"), ("spectr", "beam"), ("greedy", "gumbel"),
                          ("rsd", "greedy"), ("spechub", "iid"), ("spechub", "gumbel")]:
        kw = dict(beam_width=2, depth=D) if builder == "beam" else dict(branching=(2, 2))
        with pytest.raises(ValueError):
            exact_tree(target, draft, name, builder, **kw)
    parents = [-1, -1, 0, 0, 1, 1]
    toks = [0, 1, 0, 1, 2, 0]
    with pytest.raises(ValueError, match="without_replacement"):
        check_pairing(tree_from_parents(toks, parents, "iid"), "rsd", V)
    with pytest.raises(ValueError, match="iid"):
        check_pairing(tree_from_parents(toks, parents, "without_replacement"), "specinfer", V)
    with pytest.raises(ValueError, match="greedy"):
        check_pairing(tree_from_parents(toks, parents, "greedy"), "spectr", V)
    with pytest.raises(ValueError, match="host-only"):
        check_pairing(tree_from_parents(toks, parents, "iid"), "optimal", V)
    check_pairing(tree_from_parents(toks, parents, "without_replacement"), "rsd", V)


# --- hypothesis: random models, rules, tree shapes -------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

_REGISTERED_TREE_CASES = [c for c in CASES if c[0].name in spectheory.rules() and c[1] != "beam"]


@st.composite
def _tree_case(draw):
    r, builder, _, _ = draw(st.sampled_from(_REGISTERED_TREE_CASES))
    V = draw(st.integers(2, 3))
    depth = draw(st.integers(1, 3))
    widths = [w for w in (1, 2, 3) if r.supports(w, V) and w <= V]
    branching = tuple(draw(st.lists(st.sampled_from(widths), min_size=depth, max_size=depth)))
    if np.prod(branching) > 9:  # keep the enumeration small
        branching = branching[:1]
    seed = draw(st.integers(0, 10_000))
    zero_prob = draw(st.sampled_from([0.0, 0.3]))
    mix = draw(st.sampled_from([0.0, 0.5, 0.9]))
    return r, builder, V, branching, seed, zero_prob, mix


@settings(max_examples=20)
@given(_tree_case())
def test_exact_tree_audit_property(case):
    """Any registered rule on a tree built with the children law it assumes, on random
    TableLMs (with zeros, and drafts from far to close to the target): the sequence law
    emitted equals the target's to 1e-12, and the expected accepted length is in [0, depth]."""
    r, builder, V, branching, seed, zero_prob, mix = case
    D = len(branching)
    target = TableLM.random(V, D + 1, seed=seed, zero_prob=zero_prob)
    draft = TableLM.random(V, D, seed=seed + 1, zero_prob=zero_prob).mix(target, mix)
    a = exact_tree(target, draft, r, builder, branching=branching)
    assert a.max_error <= 1e-12, a.max_error
    assert -1e-12 <= a.expected_accepted <= D + 1e-12
