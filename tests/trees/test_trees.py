"""Draft trees and tree verification: exact sequence-level audits over TableLMs, pairing
checks (by scheme identity), the children table and level-by-level growth, and sampler checks
(chi-squared, jit/vmap, key vs uniforms)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import spectheory
from spectheory.audit import chi_square_test, exact_chain, exact_tree
from spectheory.drafts import GREEDY as GREEDY_SCHEME
from spectheory.drafts import HUB, IID, WITHOUT_REPLACEMENT
from spectheory.models import TableLM
from spectheory.sampling import table_log_probs_fn
from spectheory.trees import (
    beam_tree,
    check_pairing,
    children_table,
    draft_tree,
    grow_tree,
    node_paths,
    table_laws,
    tree_from_parents,
    tree_kernel,
    tree_num_uniforms,
    tree_verify,
    tree_verify_with_uniforms,
)
from spectheory.verify import TOKEN

from _tree_rules import GREEDY, RRS, RSD


def _models(V, D, seed, zero_prob=0.25):
    target = TableLM.random(V, D + 1, seed=seed, zero_prob=zero_prob)
    draft = TableLM.random(V, D, seed=seed + 500, zero_prob=zero_prob).mix(target, 0.4)
    return target, draft


# --- every available rule x every tree its scheme can draw ---------------------------------

def _rule_tree_cases():
    """(rule, kind, V, kwargs): fixed fan-outs (``draft_tree``) for every rule whose scheme
    has a tree child sampler, and the stochastic-beam-search tree for rules drawing without
    replacement."""
    rules = [spectheory.rule(n) for n in spectheory.rules()] + [RRS, RSD, GREEDY]
    cases = []
    for r in rules:
        if r.drafts.children is None:
            continue
        if r.drafts.name == WITHOUT_REPLACEMENT.name:
            for V, W, D in [(2, 2, 3), (3, 2, 2), (3, 3, 2)]:
                if all(r.supports(m, V) for m in range(1, W + 1)):
                    cases.append((r, "beam", V, dict(beam_width=W, depth=D)))
        for V, br in [(3, (1, 1, 1)), (3, (2, 2)), (2, (2, 1, 2)), (4, (3, 1))]:
            if all(r.supports(b, V) for b in br):
                cases.append((r, "fixed", V, dict(branching=br)))
    return cases


CASES = _rule_tree_cases()


@pytest.mark.parametrize("r,kind,V,kw", CASES,
                         ids=[f"{c[0].name}-{c[1]}-V{c[2]}-{'-'.join(map(str, c[3].values()))}" for c in CASES])
def test_exact_tree_audit_lossless(r, kind, V, kw):
    D = kw.get("depth") or len(kw["branching"])
    for seed in (0, 1):
        target, draft = _models(V, D, seed=seed + 10 * V)
        a = exact_tree(target, draft, r, **kw)
        assert a.max_error <= 1e-12, (seed, a.max_error)
        np.testing.assert_allclose(sum(a.emitted.values()), 1.0, atol=1e-12)
        assert 0 <= a.expected_accepted <= D + 1e-12


def test_rule_tree_grid_covers_trees():
    names = {(c[0].name, c[1]) for c in CASES}
    assert ("single", "fixed") in names and ("test-rrs", "fixed") in names
    assert ("test-rsd", "fixed") in names and ("test-rsd", "beam") in names
    assert ("test-greedy", "fixed") in names


@pytest.mark.parametrize("V,D", [(3, 3), (4, 2)])
def test_chain_as_tree_equals_token_verification(V, D):
    target, draft = _models(V, D, seed=3)
    t = exact_tree(target, draft, "single", branching=(1,) * D)
    c = exact_chain(target, draft, D, verifier=TOKEN)
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
    a = exact_tree(target, draft, RRS, branching=(n,))
    np.testing.assert_allclose(a.expected_accepted, 1 - rej, atol=1e-12)


def test_beam_tree_audit_depth_one_equals_rsd_on_plackett_luce():
    """With depth 1 the beam tree is W draws without replacement, so its expected accepted
    length equals the one-position exact audit of RSD with the Plackett-Luce draft law."""
    V, W = 4, 3
    target, draft = _models(V, 1, seed=5, zero_prob=0.0)
    a = exact_tree(target, draft, RSD, beam_width=W, depth=1)
    b = exact_tree(target, draft, RSD, branching=(W,))
    one = spectheory.audit.exact(RSD, target.next_law(()), draft.next_law(()), W)
    np.testing.assert_allclose(a.expected_accepted, one.acceptance, atol=1e-12)
    np.testing.assert_allclose(b.expected_accepted, one.acceptance, atol=1e-12)


def test_more_branches_accept_more():
    target, draft = _models(3, 2, seed=8)
    e = [exact_tree(target, draft, RRS, branching=(b, b)).expected_accepted for b in (1, 2, 3)]
    assert e[0] <= e[1] + 1e-12 <= e[2] + 2e-12


# --- pairing ------------------------------------------------------------------------------

def test_mismatched_pairing_is_refused():
    parents = [-1, -1, 0, 0, 1, 1]
    iid = tree_from_parents([0, 1, 0, 1, 2, 0], parents, "iid")
    wor = tree_from_parents([0, 1, 0, 1, 2, 0], parents, WITHOUT_REPLACEMENT)
    gr = tree_from_parents([0, 1, 0, 1, 2, 0], parents, "greedy")
    chain = tree_from_parents([0, 1], [-1, 0], IID)
    assert iid.scheme is IID and wor.scheme is WITHOUT_REPLACEMENT and gr.scheme is GREEDY_SCHEME
    # the message names the rule and both schemes
    with pytest.raises(ValueError, match="'test-rsd' assumes draft scheme 'without_replacement'.*scheme 'iid'"):
        check_pairing(iid, RSD, 3)
    with pytest.raises(ValueError, match="'test-rrs' assumes draft scheme 'iid'.*scheme 'without_replacement'"):
        check_pairing(wor, RRS, 3)
    with pytest.raises(ValueError, match="'without_replacement'.*'greedy'"):
        check_pairing(gr, RSD, 3)
    with pytest.raises(ValueError, match="'greedy'.*'without_replacement'"):
        check_pairing(wor, GREEDY, 3)
    check_pairing(gr, GREEDY, 3)
    check_pairing(wor, RSD, 3)
    with pytest.raises(ValueError, match="not defined for"):
        check_pairing(iid, "single", 3)
    check_pairing(chain, "single", 3)
    with pytest.raises(ValueError):
        tree_verify(jax.random.key(0), iid, np.full((7, 3), 1 / 3), np.full((7, 3), 1 / 3), RSD)


def test_exact_tree_refusals():
    t, d = TableLM.context_free([0.5, 0.5]), TableLM.context_free([0.5, 0.5])
    with pytest.raises(ValueError, match="without replacement.*'test-rrs' assumes draft scheme 'iid'"):
        exact_tree(t, d, RRS, beam_width=2, depth=2)
    with pytest.raises(ValueError, match="no tree child sampler"):
        exact_tree(t, d, "spechub", branching=(2, 2))
    with pytest.raises(ValueError, match="branching"):
        exact_tree(t, d, RRS)
    with pytest.raises(ValueError, match="branching"):
        exact_tree(t, d, RRS, branching=(2,), beam_width=2, depth=1)
    with pytest.raises(ValueError, match="beam_width"):
        exact_tree(t, d, RSD, beam_width=2)
    with pytest.raises(ValueError, match="not defined for 2 drafts"):
        exact_tree(t, d, "single", branching=(2,))
    # without replacement on a support of one token: every node has one child, which "single"
    # is defined for although the fan-out is 2
    one = TableLM.context_free([1.0, 0.0])
    a = exact_tree(one, one, spectheory.rule("rsd"), branching=(2,))
    np.testing.assert_allclose(a.expected_accepted, 1.0, atol=1e-15)


def test_tree_from_parents_scheme_argument():
    t = tree_from_parents([1, 0], [-1, 0], "without_replacement")
    assert t.scheme is WITHOUT_REPLACEMENT
    assert tree_from_parents([1, 0], [-1, 0], GREEDY_SCHEME).scheme is GREEDY_SCHEME
    with pytest.raises(ValueError, match="scheme"):
        tree_from_parents([1, 0], [-1, 0], "gumbel")
    with pytest.raises(ValueError, match="scheme"):
        tree_from_parents([1, 0], [-1, 0], 3)
    with pytest.raises(ValueError, match="max_children"):
        tree_from_parents([1, 0, 1], [-1, -1, 0], "iid", max_children=1)
    with pytest.raises(ValueError, match="precede"):
        tree_from_parents([1, 0], [1, -1], "iid")
    # the scheme is static pytree data: jit sees the object, and a tree round-trips
    leaves, treedef = jax.tree_util.tree_flatten(t)
    assert jax.tree_util.tree_unflatten(treedef, leaves).scheme is WITHOUT_REPLACEMENT
    assert jax.jit(lambda tr: tr)(t).scheme is WITHOUT_REPLACEMENT


# --- builders -----------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["iid", WITHOUT_REPLACEMENT, "greedy"])
def test_draft_tree_structure(scheme):
    V = 3
    lm = TableLM(V, {(): [0.6, 0.4, 0.0]}, default=[0.2, 0.3, 0.5])
    fn = table_log_probs_fn(lm, 3)
    tree, q = jax.jit(lambda k: draft_tree(k, scheme, fn, (3, 2), V))(jax.random.key(1))
    assert tree.scheme is spectheory.drafts.scheme(scheme)
    assert tree.token.shape == (9,) and tree.children.shape == (10, 3) and q.shape == (10, V)
    valid = np.asarray(tree.valid)
    paths = node_paths(tree)
    for i, path in enumerate(paths):
        if valid[i]:
            assert lm.sequence_prob(path) > 0
            assert len(path) == int(tree.depth[i])
            np.testing.assert_allclose(np.asarray(q[i + 1]), lm.next_law(path) if len(path) < 2 else np.full(V, 1 / V),
                                       atol=1e-12)
    # children rows list the valid children first, in increasing node index
    ch = np.asarray(tree.children)
    for r in range(10):
        m = int(tree.num_children[r])
        assert np.all(ch[r, :m] >= 0) and np.all(ch[r, m:] == -1) and np.all(np.diff(ch[r, :m]) > 0)
    np.testing.assert_allclose(np.asarray(q[0]), [0.6, 0.4, 0.0], atol=1e-12)
    name = tree.scheme.name
    if name == "without_replacement":
        assert int(tree.num_children[0]) == 2  # only two tokens of positive mass at the root
    if name == "greedy":
        assert np.asarray(tree.token)[:2].tolist() == [0, 1]
        assert int(tree.num_children[0]) == 2
        ch1 = np.asarray(tree.children)[1]
        assert np.asarray(tree.token)[ch1[0]] == 2  # the most likely token after (0,)
    if name == "iid":
        assert int(tree.num_children[0]) == 3


def test_draft_tree_refuses_schemes_without_children():
    fn = table_log_probs_fn(TableLM.context_free([0.5, 0.5]), 1)
    with pytest.raises(ValueError, match="scheme: draft scheme 'hub' has no tree child sampler"):
        draft_tree(jax.random.key(0), HUB, fn, (2,), 2)
    with pytest.raises(ValueError, match="scheme"):
        draft_tree(jax.random.key(0), "nope", fn, (2,), 2)
    with pytest.raises(ValueError, match="branching"):
        draft_tree(jax.random.key(0), "iid", fn, (0,), 2)
    with pytest.raises(ValueError, match="log_probs_fn"):
        draft_tree(jax.random.key(0), "iid", fn, (2,), 3)


def _manual_children(key, scheme, branching, logq_of_path, B_rows=None):
    """Independent replay of the documented key layout: keys = split(key, D), level t:
    split(keys[t], B * M), parent m of row r takes key r * M + m; children drawn by
    ``scheme.children`` on the parent's log law. Returns per row the list of (path, valid)
    in level order. ``logq_of_path(row, path)`` gives the log law."""
    s = spectheory.drafts.scheme(scheme)
    D = len(branching)
    keys = jax.random.split(key, D)
    B = 1 if B_rows is None else B_rows
    levels = [[[((), True)] for _ in range(B)]]
    out = [[] for _ in range(B)]
    for t, b in enumerate(branching):
        M = len(levels[-1][0])
        kk = jax.random.split(keys[t], B * M)
        nxt = [[] for _ in range(B)]
        for r in range(B):
            for m, (path, ok) in enumerate(levels[-1][r]):
                tok, val = s.children(kk[r * M + m], logq_of_path(r, path), b)
                for j in range(b):
                    v = bool(ok and val[j])
                    nxt[r].append((path + (int(tok[j]),) if v else path + (0,), v))
        for r in range(B):
            out[r].extend(nxt[r])
        levels.append(nxt)
    return out


@pytest.mark.parametrize("scheme", ["iid", "without_replacement", "greedy"])
def test_draft_tree_key_layout(scheme):
    """``draft_tree`` draws the children of every node with the documented keys (replayed here
    node by node with ``scheme.children``)."""
    V = 3
    lm = TableLM.random(V, 3, seed=3, zero_prob=0.3)
    fn = table_log_probs_fn(lm, 3)
    for k in range(3):
        key = jax.random.key(k)
        tree, _ = draft_tree(key, scheme, fn, (2, 2, 1), V)
        law = lambda r, path: jnp.asarray(fn(jnp.asarray([path], jnp.int32))[0])  # noqa: E731
        want = _manual_children(key, scheme, (2, 2, 1), law)[0]
        assert np.asarray(tree.valid).tolist() == [v for _, v in want]
        got = node_paths(tree)
        assert got == [p if v else None for p, v in want]


# --- the children table -------------------------------------------------------------------

def _loop_children(parent, valid, width):
    """Plain Python: row r lists the valid nodes with parent + 1 == r in increasing index."""
    N = len(parent)
    rows = [[] for _ in range(N + 1)]
    for i in range(N):
        if valid[i] and -1 <= parent[i] < N:
            rows[parent[i] + 1].append(i)
    table = np.full((N + 1, width), -1)
    for r, kids in enumerate(rows):
        table[r, :min(len(kids), width)] = kids[:width]
    return table, np.array([min(len(k), width) for k in rows])


@st.composite
def _parent_arrays(draw):
    lead = draw(st.sampled_from([(), (1,), (3,), (2, 2)]))
    N = draw(st.integers(0, 9))
    size = int(np.prod(lead)) if lead else 1
    par = np.array([[draw(st.integers(-1, max(i - 1, -1))) for i in range(N)] for _ in range(size)], np.int32)
    val = np.array(draw(st.lists(st.booleans(), min_size=size * N, max_size=size * N)), bool)
    width = draw(st.integers(1, 4))
    return par.reshape(lead + (N,)), val.reshape(lead + (N,)), width


@settings(max_examples=60)
@given(_parent_arrays())
def test_children_table_matches_a_python_loop(case):
    parent, valid, width = case
    lead, N = parent.shape[:-1], parent.shape[-1]
    ch, num = children_table(parent, valid, width)
    chj, numj = jax.jit(children_table, static_argnums=2)(parent, valid, width)
    assert ch.shape == lead + (N + 1, width) and num.shape == lead + (N + 1,)
    assert ch.dtype == jnp.int32 and num.dtype == jnp.int32
    size = int(np.prod(lead))
    flat_p, flat_v = parent.reshape(size, N), valid.reshape(size, N)
    flat_c = np.asarray(ch).reshape(size, N + 1, width)
    flat_n = np.asarray(num).reshape(size, N + 1)
    for b in range(size):
        want_c, want_n = _loop_children(flat_p[b].tolist(), flat_v[b].tolist(), width)
        np.testing.assert_array_equal(flat_c[b], want_c)
        np.testing.assert_array_equal(flat_n[b], want_n)
    np.testing.assert_array_equal(np.asarray(chj), np.asarray(ch))
    np.testing.assert_array_equal(np.asarray(numj), np.asarray(num))


def test_children_table_edge_cases_and_errors():
    # out-of-range parents: an eager call raises; under jit they are ignored, never scattered
    for bad in ([-1, 7, -3, 0], [-1, 1], [-1, 2, 0]):
        with pytest.raises(ValueError, match="parent"):
            children_table(np.array(bad), np.ones(len(bad), bool), 2)
    ch, num = jax.jit(children_table, static_argnums=2)(np.array([-1, 7, -3, 0]), np.ones(4, bool), 2)
    np.testing.assert_array_equal(np.asarray(ch), [[0, -1], [3, -1], [-1, -1], [-1, -1], [-1, -1]])
    np.testing.assert_array_equal(np.asarray(num), [1, 1, 0, 0, 0])
    # children beyond the width are dropped and the count capped
    ch, num = children_table(np.array([-1, -1, -1]), np.ones(3, bool), 2)
    np.testing.assert_array_equal(np.asarray(ch)[0], [0, 1])
    assert int(num[0]) == 2
    with pytest.raises(ValueError, match="width"):
        children_table(np.array([-1]), np.ones(1, bool), 0)
    with pytest.raises(ValueError, match="valid"):
        children_table(np.array([-1, 0]), np.ones(3, bool), 1)
    with pytest.raises(ValueError, match="parent"):
        children_table(np.array([-1.0, 0.0]), np.ones(2, bool), 1)


# --- grow_tree: batched growth --------------------------------------------------------------

def _ctx_lm(V, D, seed):
    return TableLM.random(V, D, seed=seed, zero_prob=0.3)


@pytest.mark.parametrize("scheme", ["iid", "without_replacement", "greedy"])
def test_grow_tree_batched_rows_follow_the_key_layout(scheme):
    """B > 1 rows with different root laws: every row's tree is the one the documented key
    layout gives (replayed node by node), its q rows are the row's laws, and for B = 1
    grow_tree is draft_tree."""
    V, br, B = 3, (2, 2), 3
    lms = [_ctx_lm(V, 2, seed) for seed in range(B)]
    fns = [table_log_probs_fn(lm, 2) for lm in lms]
    root = jnp.concatenate([fn(jnp.zeros((1, 0), jnp.int32)) for fn in fns])
    calls = []

    def expand(t, token, parent, valid, lo, hi):
        # host-side: NumPy on the concrete tree so far, one row at a time
        token, parent, valid = np.asarray(token), np.asarray(parent), np.asarray(valid)
        calls.append((t, lo, hi, token.shape))
        out = np.zeros((B, hi - lo, V))
        for r in range(B):
            for i in range(lo, hi):
                path = [token[r, i]]
                j = parent[r, i]
                while j >= 0:
                    path.append(token[r, j])
                    j = parent[r, j]
                out[r, i - lo] = np.asarray(fns[r](jnp.asarray([path[::-1]], jnp.int32))[0])
        return out

    key = jax.random.key(5)
    tree, q = grow_tree(key, scheme, br, root, expand)
    assert calls == [(0, 0, 2, (B, 2))]
    assert tree.token.shape == (B, 6) and tree.children.shape == (B, 7, 2) and q.shape == (B, 7, V)
    assert tree.scheme is spectheory.drafts.scheme(scheme) and tree.max_depth == 2
    want = _manual_children(key, scheme, br, lambda r, path: jnp.asarray(fns[r](jnp.asarray([path], jnp.int32))[0]),
                            B_rows=B)
    for r in range(B):
        one = jax.tree_util.tree_map(lambda a: a[r], tree)
        assert node_paths(one) == [p if v else None for p, v in want[r]]
        np.testing.assert_allclose(np.asarray(q[r, 0]), lms[r].next_law(()), atol=1e-12)
        for i, path in enumerate(node_paths(one)):
            row = lms[r].next_law(path) if (path is not None and len(path) < 2) else np.full(V, 1 / V)
            np.testing.assert_allclose(np.asarray(q[r, i + 1]), row, atol=1e-12)
        # the children table is the one of its own parent array
        ch, num = children_table(one.parent, one.valid, 2)
        np.testing.assert_array_equal(np.asarray(one.children), np.asarray(ch))
        np.testing.assert_array_equal(np.asarray(one.num_children), np.asarray(num))
    # B = 1 is draft_tree
    single, q1 = grow_tree(key, scheme, br, root[:1],
                           lambda t, tok, par, ok, lo, hi: expand1(t, tok, par, lo, hi, fns[0]))
    ref, qref = draft_tree(key, scheme, fns[0], br, V)
    for a, b_ in zip(jax.tree_util.tree_leaves(single), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_array_equal(np.asarray(a)[0], np.asarray(b_))
    np.testing.assert_array_equal(np.asarray(q1[0]), np.asarray(qref))


def expand1(t, tok, par, lo, hi, fn):
    """Log laws of slots lo..hi-1 (depth t + 1) of a one-row tree: walk up the parents."""
    cols = [jnp.arange(lo, hi)]
    for _ in range(t):
        cols.append(jnp.maximum(par[0][cols[-1]], 0))
    prefixes = jnp.stack([tok[0][c] for c in cols[::-1]], axis=1)
    return fn(prefixes)[None]


def test_grow_tree_active_rows_jit_and_errors():
    V, B = 3, 4
    fn = table_log_probs_fn(_ctx_lm(V, 2, 9), 2)
    root = jnp.repeat(fn(jnp.zeros((1, 0), jnp.int32)), B, axis=0)

    def expand(t, tok, par, ok, lo, hi):  # traceable: every row has the same model
        return jax.vmap(lambda tk, pa: expand1(t, tk[None], pa[None], lo, hi, fn)[0])(tok, par)

    key = jax.random.key(2)
    active = jnp.array([True, False, True, False])
    tree, q = grow_tree(key, "without_replacement", (2, 2), root, expand, active=active)
    full, qf = grow_tree(key, "without_replacement", (2, 2), root, expand)
    jt, jq = jax.jit(lambda k, a: grow_tree(k, "without_replacement", (2, 2), root, expand, active=a))(key, active)
    for a, b_ in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(jt)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b_))
    np.testing.assert_allclose(np.asarray(jq), np.asarray(q), rtol=1e-14)  # jit may round exp differently
    valid = np.asarray(tree.valid)
    assert not valid[1].any() and not valid[3].any()
    np.testing.assert_array_equal(np.asarray(tree.num_children)[[1, 3]], 0)
    np.testing.assert_allclose(np.asarray(q)[[1, 3]], 1 / V)
    # active rows do not depend on the others: same keys, same trees
    for r in (0, 2):
        for a, b_ in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(full)):
            np.testing.assert_array_equal(np.asarray(a)[r], np.asarray(b_)[r])
        np.testing.assert_array_equal(np.asarray(q)[r], np.asarray(qf)[r])
    with pytest.raises(ValueError, match="expand"):
        grow_tree(key, "iid", (2, 2), root, lambda *a: jnp.zeros((B, 1, V)))
    with pytest.raises(ValueError, match="root_logq"):
        grow_tree(key, "iid", (2,), root[0], expand)
    with pytest.raises(ValueError, match="active"):
        grow_tree(key, "iid", (2,), root, expand, active=jnp.ones(3, bool))
    with pytest.raises(ValueError, match="scheme: draft scheme 'hub'"):
        grow_tree(key, "hub", (2,), root, expand)
    with pytest.raises(ValueError, match="branching"):
        grow_tree(key, "iid", (), root, expand)


def test_grow_tree_batched_children_laws():
    """Chi-squared (alpha = 1e-3, fixed key) on the root children of every row of one large
    batch (rows with two different root laws) against ``children_law``; the rows use
    different keys of one split, so they are independent draws."""
    V, b, B = 4, 3, 8_000
    laws = [np.array([0.1, 0.4, 0.1, 0.4]), np.array([0.0, 0.7, 0.0, 0.3])]
    root = jnp.log(jnp.asarray(np.stack([laws[r % 2] for r in range(B)])))
    for name in ("without_replacement", "greedy", "iid"):
        s = spectheory.drafts.scheme(name)
        tree, _ = jax.jit(lambda k: grow_tree(k, s, (b,), root, None))(jax.random.key(11))
        tok = np.asarray(tree.token)
        valid = np.asarray(tree.valid)
        for r0, q in enumerate(laws):
            tuples, probs = s.children_law(q, b)
            m = tuples.shape[1]
            rows = np.arange(r0, B, 2)
            assert np.all(valid[rows, :m]) and not np.any(valid[rows, m:])
            idx = {tuple(int(x) for x in t): i for i, t in enumerate(tuples)}
            draws = [idx[tuple(t)] for t in tok[rows, :m].tolist()]
            out = chi_square_test(np.array(draws), probs, alpha=1e-3)
            assert out.passed, (name, r0, out.p_value)
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
    audit = exact_tree(target, draft, RSD, beam_width=W, depth=D)
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
    trees, qs = jax.jit(jax.vmap(lambda k: draft_tree(k, "without_replacement", fn, (2, 2), 3)))(
        jax.random.split(jax.random.key(1), 4))
    ps = qs  # any valid laws
    out = jax.jit(jax.vmap(lambda k, t, pp, qq: tree_verify(k, t, pp, qq, RSD)))(keys[:4], trees, ps, qs)
    one = jax.jit(lambda k, t, pp, qq: tree_verify(k, t, pp, qq, RSD))
    for i in range(4):
        t_i = jax.tree_util.tree_map(lambda a: a[i], trees)
        single = one(keys[i], t_i, ps[i], qs[i])
        np.testing.assert_array_equal(np.asarray(out.tokens[i]), np.asarray(single.tokens))


@pytest.mark.parametrize("scheme", ["greedy", "without_replacement"])
def test_draft_tree_children_match_the_audited_law(scheme):
    """The children ``draft_tree`` draws at the root (jitted, vmapped over keys) follow the law
    the exact audit enumerates, ``scheme.children_law`` (itself checked against an independent
    enumeration in tests/drafts): chi-squared on ordered tuples, alpha = 1e-3, fixed key."""
    V, b = 4, 3
    q = np.array([0.1, 0.4, 0.1, 0.4])  # ties: greedy keeps the lower ids first
    fn = table_log_probs_fn(TableLM.context_free(q), 1)
    keys = jax.random.split(jax.random.key(3), 20_000)
    trees, _ = jax.jit(jax.vmap(lambda k: draft_tree(k, scheme, fn, (b,), V)))(keys)
    toks = [tuple(r) for r in np.asarray(trees.token).tolist()]
    tuples, probs = spectheory.drafts.scheme(scheme).children_law(q, b)
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
    return (not r.verifier.host_only) and r.drafts.children is not None


def test_registered_tree_rules_are_in_the_lossless_grid():
    """Every registered JAX rule whose draft scheme a tree carries is audited lossless by
    ``test_exact_tree_audit_lossless`` on the trees its scheme draws."""
    registered = [spectheory.rule(n) for n in spectheory.rules()]
    carriable = [r for r in registered if _tree_carriable(r)]
    assert {r.name for r in carriable} >= {"single", "specinfer", "rsd", "spectr", "greedy"}
    covered = {(c[0].name, c[1]) for c in CASES}
    for r in carriable:
        assert (r.name, "fixed") in covered, r.name
        if r.drafts.name == WITHOUT_REPLACEMENT.name:
            assert (r.name, "beam") in covered, r.name


def test_registered_rules_on_one_pair_lossless_and_mismatch_refused():
    """Registered rules by name on one small TableLM pair: lossless at sequence level on their
    own trees, ValueError on a tree drawing another law."""
    V, D = 3, 2
    target, draft = _models(V, D, seed=42)
    own = {"specinfer": dict(branching=(2, 2)), "spectr": dict(branching=(2, 2)), "rsd": dict(branching=(2, 2)),
           "greedy": dict(branching=(2, 2)), "rsd-beam": dict(beam_width=2, depth=D)}
    for name, kw in own.items():
        a = exact_tree(target, draft, name.split("-")[0], **kw)
        assert a.max_error <= 1e-12, (name, a.max_error)
        assert 0 < a.expected_accepted <= D + 1e-12
    # two children at every node with SpecInfer (RRS) accept at least as much as the chain
    c = exact_chain(target, draft, D, verifier=TOKEN)
    a = exact_tree(target, draft, "specinfer", branching=(2, 2))
    assert a.expected_accepted >= c.expected_accepted - 1e-12
    for name in ("specinfer", "spectr", "greedy"):
        with pytest.raises(ValueError, match="without replacement"):
            exact_tree(target, draft, name, beam_width=2, depth=D)
    with pytest.raises(ValueError, match="no tree child sampler"):
        exact_tree(target, draft, "spechub", branching=(2, 2))
    parents = [-1, -1, 0, 0, 1, 1]
    toks = [0, 1, 0, 1, 2, 0]
    with pytest.raises(ValueError, match="'rsd' assumes draft scheme 'without_replacement'.*'iid'"):
        check_pairing(tree_from_parents(toks, parents, "iid"), "rsd", V)
    with pytest.raises(ValueError, match="'specinfer' assumes draft scheme 'iid'.*'without_replacement'"):
        check_pairing(tree_from_parents(toks, parents, "without_replacement"), "specinfer", V)
    with pytest.raises(ValueError, match="'spectr' assumes draft scheme 'iid'.*'greedy'"):
        check_pairing(tree_from_parents(toks, parents, "greedy"), "spectr", V)
    with pytest.raises(ValueError, match="'spechub' assumes draft scheme 'hub'.*'greedy'"):
        check_pairing(tree_from_parents(toks, parents, "greedy"), "spechub", V)
    with pytest.raises(ValueError, match="host-only"):
        check_pairing(tree_from_parents(toks, parents, "iid"), "optimal", V)
    check_pairing(tree_from_parents(toks, parents, "without_replacement"), "rsd", V)


# --- hypothesis: random models, rules, tree shapes -------------------------------------------

_REGISTERED_TREE_RULES = sorted({c[0].name for c in CASES if c[0].name in spectheory.rules()})


@st.composite
def _tree_case(draw):
    r = spectheory.rule(draw(st.sampled_from(_REGISTERED_TREE_RULES)))
    V = draw(st.integers(2, 3))
    depth = draw(st.integers(1, 3))
    widths = [w for w in (1, 2, 3) if r.supports(w, V) and w <= V]
    branching = tuple(draw(st.lists(st.sampled_from(widths), min_size=depth, max_size=depth)))
    if np.prod(branching) > 9:  # keep the enumeration small
        branching = branching[:1]
    seed = draw(st.integers(0, 10_000))
    zero_prob = draw(st.sampled_from([0.0, 0.3]))
    mix = draw(st.sampled_from([0.0, 0.5, 0.9]))
    return r, V, branching, seed, zero_prob, mix


@settings(max_examples=20)
@given(_tree_case())
def test_exact_tree_audit_property(case):
    """Any registered rule on a tree whose children its own scheme draws, on random
    TableLMs (with zeros, and drafts from far to close to the target): the sequence law
    emitted equals the target's to 1e-12, and the expected accepted length is in [0, depth]."""
    r, V, branching, seed, zero_prob, mix = case
    D = len(branching)
    target = TableLM.random(V, D + 1, seed=seed, zero_prob=zero_prob)
    draft = TableLM.random(V, D, seed=seed + 1, zero_prob=zero_prob).mix(target, mix)
    a = exact_tree(target, draft, r, branching=branching)
    assert a.max_error <= 1e-12, a.max_error
    assert -1e-12 <= a.expected_accepted <= D + 1e-12
