"""Bad input to spectheory.models: eagerly a ``ValueError``/``TypeError`` whose message starts
with the argument's name, never a hang (cyclic parents) or a plausible value; under
``jax.jit`` the documented flags (tree helpers: depth ``-1`` and an all-false ancestor matrix;
JaxCausalLM and gpt_logits: NaN logits; point_mass: a NaN row; prompt_lookup: tokens ``-1``
and ``ngram = -1``); legal input under jit equals the eager result.
"""

import functools
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from spectheory.models import (
    GPTConfig,
    JaxCache,
    JaxCausalLM,
    TableCausalLM,
    TableLM,
    chain_parents,
    decode_bytes,
    encode_bytes,
    gpt_from_pretrained,
    gpt_init,
    gpt_logits,
    point_mass,
    prompt_lookup,
    shipped_model_path,
    tree_ancestors,
    tree_depths,
    tree_paths,
)

KEY = jax.random.key(0)

# --- tree helpers ---------------------------------------------------------------------------------

BAD_PARENTS = {
    "cycle": [1, 0],
    "self loop": [0],
    "out of range": [-1, 5],
    "below -1": [-2],
    "parent after child": [-1, 2, 0],
    "float": np.array([-1.0, 0.0]),
    "bool": np.array([False, False]),
    "0-d": np.int32(-1),
    "None": None,
    "str": "ab",
}
TREE_FNS = {
    "tree_paths": tree_paths,
    "tree_ancestors[np]": lambda p: tree_ancestors(p, np),
    "tree_ancestors[jnp]": lambda p: tree_ancestors(p if p is None or isinstance(p, str) else jnp.asarray(p)),
    "tree_depths[np]": lambda p: tree_depths(p, np),
}


class _Timeout(Exception):
    pass


def _bounded(fn, seconds=10):
    """Run ``fn`` with an alarm (a hang fails the test instead of stalling the suite)."""
    def alarm(*_):
        raise _Timeout
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        return fn()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("fn", TREE_FNS)
@pytest.mark.parametrize("case", BAD_PARENTS)
def test_tree_helpers_refuse_bad_parents(fn, case):
    with pytest.raises(ValueError, match="^parents"):
        _bounded(lambda: TREE_FNS[fn](BAD_PARENTS[case]))


def test_tree_paths_on_a_cycle_raises_instead_of_hanging():
    """The walk to a root used to loop forever on ``[1, 0]`` (guarded by an alarm here)."""
    for parents in ([1, 0], [-1, 2, 1], [0]):
        with pytest.raises(ValueError, match=r"^parents: need -1 <= parents\[i\] < i"):
            _bounded(lambda: tree_paths(parents))


def test_tree_paths_is_one_forest():
    with pytest.raises(ValueError, match="^parents"):
        tree_paths(np.array([[-1, 0], [-1, -1]]))
    with pytest.raises(TypeError, match="^parents"):
        jax.jit(lambda p: jnp.asarray(len(tree_paths(p))))(jnp.array([-1, 0]))
    with pytest.raises(ValueError, match="^xp"):
        tree_ancestors([-1, 0], xp=list)


@st.composite
def parent_arrays(draw):
    """Integer arrays in [-3, T + 2): valid forests and (mostly) invalid ones."""
    T = draw(st.integers(1, 6))
    return np.array([draw(st.integers(-3, T + 1)) for _ in range(T)], np.int32)


def _is_forest(p):
    """Independent: -1 <= p[i] < i written as a loop."""
    return all(-1 <= int(x) < i for i, x in enumerate(p))


@settings(max_examples=30)
@given(parent_arrays())
def test_tree_helpers_accept_exactly_the_forests(parents):
    if not _is_forest(parents):
        for fn in TREE_FNS.values():
            with pytest.raises(ValueError, match="^parents"):
                _bounded(lambda: fn(parents))
        return
    paths = tree_paths(parents)
    for i, path in enumerate(paths):  # independent check of a root path
        assert path[-1] == i and parents[path[0]] == -1
        assert all(parents[b] == a for a, b in zip(path, path[1:]))
    np.testing.assert_array_equal(tree_depths(parents, np), [len(p) - 1 for p in paths])


def test_tree_helpers_under_jit_flag_invalid_forests():
    """Traced parents: an invalid row gives depth -1 everywhere and an all-false ancestor
    matrix; valid rows equal the eager result (one compilation for the batch)."""
    rows = np.array([[-1, 0, 1, 1], [-1, -1, 0, 2], [1, 0, -1, -1], [-1, 0, 3, 2], [-1, 7, 0, 0], [-2, 0, 0, 0]],
                    np.int32)
    anc, depth = jax.jit(lambda p: (tree_ancestors(p), tree_depths(p)))(jnp.asarray(rows))
    anc, depth = np.asarray(anc), np.asarray(depth)
    for b, row in enumerate(rows):
        if _is_forest(row):
            np.testing.assert_array_equal(anc[b], tree_ancestors(row, np))
            np.testing.assert_array_equal(depth[b], [len(p) - 1 for p in tree_paths(row)])
        else:
            assert not anc[b].any() and np.all(depth[b] == -1), b


@pytest.mark.parametrize("T", [-1, 2.5, True, None, "3"])
def test_chain_parents_refuses_bad_T(T):
    with pytest.raises(ValueError, match="^T"):
        chain_parents(T)


def test_chain_parents_is_a_chain():
    for T in range(5):
        p = chain_parents(T)
        assert [len(x) for x in tree_paths(p)] == list(range(1, T + 1))


# --- TableLM --------------------------------------------------------------------------------------

LM = TableLM(2, {(): [0.25, 0.75]}, default=[0.5, 0.5])


@pytest.mark.parametrize("make,exc,arg", [
    (lambda: TableLM(0, {}), ValueError, "vocab_size"),
    (lambda: TableLM(2.5, {}), ValueError, "vocab_size"),
    (lambda: TableLM(True, {}), ValueError, "vocab_size"),
    (lambda: TableLM(None, {}), ValueError, "vocab_size"),
    (lambda: TableLM("a", {}), ValueError, "vocab_size"),
    (lambda: TableLM(2, 5), TypeError, "table"),
    (lambda: TableLM(2, {}, default=[np.nan, 1.0]), ValueError, "default"),
    (lambda: TableLM(2, {}, default=[0.5, 0.5, 0.0]), ValueError, "default"),
    (lambda: TableLM(2, {(): [0.5, 0.6]}).next_law(()), ValueError, "table"),
    (lambda: TableLM(2, lambda p: [1.0]).next_law(()), ValueError, "table"),
    (lambda: TableLM(2, lambda p: "ab").next_law(()), ValueError, "table"),
    (lambda: TableLM.context_free([np.nan, 1.0]), ValueError, "probs"),
    (lambda: TableLM.context_free([0.5, 0.6]), ValueError, "probs"),
    (lambda: TableLM.context_free([[0.5, 0.5]]), ValueError, "probs"),
    (lambda: TableLM.context_free([0.0, 0.0]), ValueError, "probs"),
    (lambda: TableLM.context_free("ab"), ValueError, "probs"),
    (lambda: TableLM.random(0, 1), ValueError, "vocab_size"),
    (lambda: TableLM.random(2, -1), ValueError, "depth"),
    (lambda: TableLM.random(2, 2.5), ValueError, "depth"),
    (lambda: TableLM.random(2, 1, concentration=0.0), ValueError, "concentration"),
    (lambda: TableLM.random(2, 1, concentration=np.nan), ValueError, "concentration"),
    (lambda: TableLM.random(2, 1, zero_prob=1.0), ValueError, "zero_prob"),
    (lambda: TableLM.random(2, 1, zero_prob=-0.5), ValueError, "zero_prob"),
    (lambda: LM.mix(LM, np.nan), ValueError, "weight"),
    (lambda: LM.mix(LM, 2.0), ValueError, "weight"),
    (lambda: LM.mix(LM, "a"), ValueError, "weight"),
    (lambda: LM.mix(3, 0.5), TypeError, "other"),
    (lambda: LM.mix(TableLM.context_free([1 / 3] * 3), 0.5), ValueError, "other"),
])
def test_table_lm_refuses_bad_arguments(make, exc, arg):
    with pytest.raises(exc, match=f"^{arg}"):
        make()


@pytest.mark.parametrize("ids", [(5,), (-1,), (0.5,), (True,), None, "ab", np.array([0.0]), np.array([[0]])])
@pytest.mark.parametrize("method,arg", [("next_law", "prefix"), ("sequence_prob", "seq"), ("laws", "continuation")])
def test_table_lm_refuses_bad_token_ids(ids, method, arg):
    with pytest.raises(ValueError, match=f"^{arg}"):
        if method == "laws":
            LM.laws((), ids)
        else:
            getattr(LM, method)(ids)


def test_table_lm_takes_ids_as_lists_arrays_and_numpy_ints():
    """Legal ids in every form give the same law; sequence_prob is the product of next_law."""
    want = 0.75 * 0.5
    for seq in ([1, 0], (1, 0), np.array([1, 0]), jnp.array([1, 0]), [np.int64(1), jnp.int32(0)]):
        assert LM.sequence_prob(seq) == want
    assert LM.laws([], np.array([], np.int64)).shape == (1, 2)


# --- TableCausalLM ----------------------------------------------------------------------------------

TC = TableCausalLM(LM)


def _tree_cache():
    return TC.logits(np.array([[0, 1]]), TC.init_cache(1), parents=[-1, 0])[1]


@pytest.mark.parametrize("make,exc,arg", [
    (lambda: TableCausalLM(LM, max_len=-1), ValueError, "max_len"),
    (lambda: TableCausalLM(LM, max_len=2.5), ValueError, "max_len"),
    (lambda: TableCausalLM("lm"), TypeError, "table"),
    (lambda: TC.init_cache(0), ValueError, "batch_size"),
    (lambda: TC.init_cache(-1), ValueError, "batch_size"),
    (lambda: TC.init_cache(2.5), ValueError, "batch_size"),
    (lambda: TC.init_cache(None), ValueError, "batch_size"),
    (lambda: TC.init_cache(1, max_len=0), ValueError, "max_len"),
    (lambda: TC.logits(np.array([[0.5]]), TC.init_cache(1)), ValueError, "tokens"),
    (lambda: TC.logits(np.array([0, 1]), TC.init_cache(1)), ValueError, "tokens"),
    (lambda: TC.logits(np.array([[5]]), TC.init_cache(1)), ValueError, "tokens"),
    (lambda: TC.logits(np.array([[0]]), TC.init_cache(2)), ValueError, "tokens"),
    (lambda: TC.logits(None, TC.init_cache(1)), ValueError, "tokens"),
    (lambda: TC.logits(jnp.array([[0]]), None), TypeError, "cache"),
    (lambda: TC.logits(np.array([[0]]), TC.init_cache(1), valid=np.ones((1, 2), bool)), ValueError, "valid"),
    (lambda: TC.logits(np.array([[0]]), TC.init_cache(1), valid=np.array([[2]])), ValueError, "valid"),
    (lambda: TC.logits(np.array([[0, 1]]), TC.init_cache(1), parents=[1, 0]), ValueError, "parents"),
    (lambda: TC.logits(np.array([[0, 1]]), TC.init_cache(1), parents=[-1, 0, 1]), ValueError, "parents"),
    (lambda: TC.logits(np.array([[0, 1]]), TC.init_cache(1), parents=[-1, 0], valid=[[False, True]]),
     ValueError, "valid"),
    (lambda: TC.rollback(TC.logits(np.array([[0, 1]]), TC.init_cache(1))[1], [1.5]), ValueError, "lengths"),
    (lambda: TC.rollback(TC.init_cache(1), [3]), ValueError, "lengths"),
    (lambda: TC.rollback(TC.init_cache(1), [0, 0]), ValueError, "lengths"),
    (lambda: TC.rollback(None, [0]), TypeError, "cache"),
    (lambda: TC.commit(TC.init_cache(1), np.ones((1, 1), bool)), ValueError, "cache"),
    (lambda: TC.commit(_tree_cache(), np.ones((1, 3), bool)), ValueError, "keep"),
    (lambda: TC.commit(_tree_cache(), np.array([[0, 1]], bool)), ValueError, "keep"),
    (lambda: TC.lengths("cache"), TypeError, "cache"),
])
def test_table_causal_lm_refuses_bad_arguments(make, exc, arg):
    with pytest.raises(exc, match=f"^{arg}"):
        make()


def test_table_causal_lm_max_len_is_checked_before_the_cache_changes():
    cache = TC.init_cache(1, max_len=2)
    _, cache = TC.logits(np.array([[1]]), cache)
    with pytest.raises(ValueError, match="^tokens: a row would reach length 3 > max_len=2"):
        TC.logits(np.array([[0, 1]]), cache)
    assert cache.rows == [[1]]  # unchanged by the refused call
    with pytest.raises(ValueError, match="^tokens"):
        TC.logits(np.array([[0, 1]]), cache, parents=[-1, 0])  # a path of depth 2 after length 1
    logits, cache = TC.logits(np.array([[0, 1]]), cache, parents=[-1, -1])  # two roots fit
    np.testing.assert_allclose(np.exp(np.asarray(logits[0])), [LM.next_law([1, 0]), LM.next_law([1, 1])])


# --- JaxCausalLM and the GPT ---------------------------------------------------------------------

V = 5


def _bag_of_tokens(params, tokens):
    """A causal toy LM: logits at s are the summed rows of ``params`` for tokens[:s + 1]."""
    return jnp.cumsum(params[tokens], axis=1)


PARAMS = jax.random.normal(jax.random.key(1), (V, V))
JL = JaxCausalLM(_bag_of_tokens, PARAMS, vocab_size=V, max_len=6)


def test_jax_causal_lm_legal_calls_match_the_direct_route():
    """Independent route: logits of a chain are _bag_of_tokens of the whole prefix."""
    logits, cache = JL.logits(jnp.array([[1, 2]]), JL.init_cache(1))
    logits2, cache = JL.logits(jnp.array([[3]]), cache)
    full = _bag_of_tokens(PARAMS, jnp.array([[1, 2, 3]]))
    np.testing.assert_allclose(np.asarray(logits[0]), np.asarray(full[0, :2]), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(logits2[0, 0]), np.asarray(full[0, 2]), rtol=1e-6)
    tl, _ = JL.logits(jnp.array([[4, 0]]), cache, parents=[-1, 0])
    path = _bag_of_tokens(PARAMS, jnp.array([[1, 2, 3, 4, 0]]))
    np.testing.assert_allclose(np.asarray(tl[0]), np.asarray(path[0, 3:]), rtol=1e-6)


def _chain_cache():
    return JL.logits(jnp.array([[1, 2]]), JL.init_cache(1))[1]


@pytest.mark.parametrize("make,exc,arg", [
    (lambda: JaxCausalLM(None, PARAMS, V, 6), TypeError, "apply_fn"),
    (lambda: JaxCausalLM(_bag_of_tokens, PARAMS, 0, 6), ValueError, "vocab_size"),
    (lambda: JaxCausalLM(_bag_of_tokens, PARAMS, 2.5, 6), ValueError, "vocab_size"),
    (lambda: JaxCausalLM(_bag_of_tokens, PARAMS, V, -1), ValueError, "max_len"),
    (lambda: JaxCausalLM(_bag_of_tokens, PARAMS, V).init_cache(1), ValueError, "max_len"),
    (lambda: JL.init_cache(0), ValueError, "batch_size"),
    (lambda: JL.init_cache(2.5), ValueError, "batch_size"),
    (lambda: JL.logits(jnp.array([[7]]), JL.init_cache(1)), ValueError, "tokens"),
    (lambda: JL.logits(jnp.array([[-1]]), JL.init_cache(1)), ValueError, "tokens"),
    (lambda: JL.logits(jnp.array([[0.5]]), JL.init_cache(1)), ValueError, "tokens"),
    (lambda: JL.logits(jnp.array([[1]]), JL.init_cache(2)), ValueError, "tokens"),
    (lambda: JL.logits(jnp.ones((1, 7), int), JL.init_cache(1)), ValueError, "tokens"),
    (lambda: JL.logits(jnp.ones((1, 2), int), JL.init_cache(1), valid=jnp.ones((1, 3), bool)), ValueError, "valid"),
    (lambda: JL.logits(jnp.array([[0, 1]]), JL.init_cache(1), parents=[1, 0]), ValueError, "parents"),
    (lambda: JL.logits(jnp.array([[0, 1]]), JL.init_cache(1), parents=[-1.0, 0.0]), ValueError, "parents"),
    (lambda: JL.logits(jnp.ones((1, 5), int), _chain_cache(), parents=[-1] * 5), ValueError, "tokens"),
    (lambda: JL.logits(jnp.array([[1]]), None), TypeError, "cache"),
    (lambda: JL.rollback(JL.init_cache(1), [3]), ValueError, "lengths"),
    (lambda: JL.rollback(_chain_cache(), [1.5]), ValueError, "lengths"),
    (lambda: JL.rollback(_chain_cache(), [-1]), ValueError, "lengths"),
    (lambda: JL.commit(JL.init_cache(1), np.ones((2, 3), bool)), ValueError, "keep"),
    (lambda: JL.commit(JL.init_cache(1), np.full((1, 2), 3)), ValueError, "keep"),
    (lambda: gpt_init(None, GPTConfig(5, 8, 8, 1, 2)), ValueError, "key"),
    (lambda: gpt_init(KEY, (5, 8, 8, 1, 2)), TypeError, "config"),
    (lambda: gpt_init(KEY, GPTConfig(5, 8, 8, 1, 3)), ValueError, "config"),
    (lambda: gpt_init(KEY, GPTConfig(5, 8, 8, -1, 2)), ValueError, "config"),
    (lambda: gpt_init(KEY, GPTConfig(5, 8, 8, 1, 2, layer_norm_epsilon=0.0)), ValueError, "config"),
    (lambda: gpt_from_pretrained(3), TypeError, "path"),
    (lambda: gpt_from_pretrained("/nonexistent-dir"), FileNotFoundError, "path"),
])
def test_jax_lm_refuses_bad_arguments(make, exc, arg):
    with pytest.raises(exc, match=f"^{arg}"):
        make()


def test_jax_causal_lm_tree_slots_beyond_max_len_are_refused():
    cache = JL.logits(jnp.array([[1, 2, 3, 4]]), JL.init_cache(1))[1]  # length 4 of max_len 6
    with pytest.raises(ValueError, match="^tokens: a valid tree node would be stored at slot 6"):
        JL.logits(jnp.array([[0, 1, 2]]), cache, parents=[-1, -1, -1])
    JL.logits(jnp.array([[0, 1, 2]]), cache, parents=[-1, -1, -1], valid=[[True, True, False]])  # fits


def test_jax_causal_lm_under_jit_gives_nan_on_invalid_input():
    """One jitted function per mode; NaN exactly on the flagged rows and positions, the eager
    logits elsewhere."""
    @jax.jit
    def chain(lm, tokens, lengths):
        cache = lm.init_cache(2)._replace(lengths=lengths)
        return lm.logits(tokens, cache)[0]

    toks = jnp.array([[1, 2, 3], [1, 7, 3]])  # row 1: an out-of-range id
    out = np.asarray(chain(JL, toks, jnp.array([0, 0], jnp.int32)))
    assert np.all(np.isnan(out[1])) and not np.any(np.isnan(out[0]))
    np.testing.assert_allclose(out[0], np.asarray(JL.logits(toks[:1], JL.init_cache(1))[0][0]), rtol=1e-6)
    out = np.asarray(chain(JL, jnp.array([[1, 2, 3], [1, 2, 3]]), jnp.array([4, 0], jnp.int32)))
    assert not np.any(np.isnan(out[0, :2])) and np.all(np.isnan(out[0, 2]))  # position 6 >= max_len
    assert not np.any(np.isnan(out[1]))

    @jax.jit
    def tree(lm, parents):
        return lm.logits(jnp.array([[1, 2, 3]]), lm.init_cache(1), parents=parents)[0]

    assert np.all(np.isnan(np.asarray(tree(JL, jnp.array([1, 0, -1], jnp.int32)))))  # a cycle
    good = np.asarray(tree(JL, jnp.array([-1, 0, 0], jnp.int32)))
    np.testing.assert_allclose(good, np.asarray(JL.logits(jnp.array([[1, 2, 3]]), JL.init_cache(1),
                                                           parents=[-1, 0, 0])[0]), rtol=1e-6)

    @jax.jit
    def rolled(lm, lengths):
        cache = lm.logits(jnp.array([[1, 2]]), lm.init_cache(1))[1]
        cache = lm.rollback(cache, lengths)
        return cache.lengths, lm.logits(jnp.array([[3]]), cache)[0]

    lengths, out = rolled(JL, jnp.array([5], jnp.int32))  # 5 > the current length 2
    assert lengths.tolist() == [-1] and np.all(np.isnan(np.asarray(out)))
    lengths, out = rolled(JL, jnp.array([1], jnp.int32))
    assert lengths.tolist() == [1] and not np.any(np.isnan(np.asarray(out)))


def test_gpt_logits_checks_tokens_and_flags_them_under_jit():
    cfg = GPTConfig(vocab_size=5, n_positions=4, n_embd=8, n_layer=1, n_head=2)
    params = gpt_init(KEY, cfg)
    for tokens, arg in ((jnp.array([[0.5]]), "tokens"), (jnp.array([1, 2]), "tokens"),
                        (jnp.array([[9]]), "tokens"), (jnp.ones((1, 5), int), "tokens")):
        with pytest.raises(ValueError, match=f"^{arg}"):
            gpt_logits(params, tokens, cfg)
    with pytest.raises(TypeError, match="^config"):
        gpt_logits(params, jnp.array([[1]]), None)
    f = jax.jit(functools.partial(gpt_logits, config=cfg))
    out = np.asarray(f(params, jnp.array([[1, 2], [1, 9]])))
    assert np.all(np.isnan(out[1])) and not np.any(np.isnan(out[0]))
    np.testing.assert_allclose(out[0], np.asarray(gpt_logits(params, jnp.array([[1, 2]]), cfg))[0], rtol=1e-5)


def test_jax_cache_type_is_checked():
    with pytest.raises(TypeError, match="^cache"):
        JL.lengths((jnp.zeros((1, 6), jnp.int32), jnp.zeros(1, jnp.int32)))
    assert JL.lengths(JaxCache(jnp.zeros((1, 6), jnp.int32), jnp.zeros(1, jnp.int32))).tolist() == [0]


# --- prompt lookup, point masses, bytes, shipped models ------------------------------------------

CTX = jnp.array([5, 1, 2, 3, 9, 1, 2])


@pytest.mark.parametrize("kw,arg", [
    (dict(num_drafts=0), "num_drafts"), (dict(num_drafts=-1), "num_drafts"), (dict(num_drafts=2.5), "num_drafts"),
    (dict(num_drafts=True), "num_drafts"), (dict(num_drafts=2, max_ngram=2.5), "max_ngram"),
    (dict(num_drafts=2, min_ngram=0), "min_ngram"), (dict(num_drafts=2, min_ngram=True), "min_ngram"),
    (dict(num_drafts=2, min_ngram=3, max_ngram=2), "min_ngram"), (dict(num_drafts=2, pad_token=1.5), "pad_token"),
    (dict(num_drafts=2, length=-1), "length"), (dict(num_drafts=2, length=99), "length"),
    (dict(num_drafts=2, length=1.5), "length"), (dict(num_drafts=2, length=jnp.array([3])), "length"),
])
def test_prompt_lookup_refuses_bad_arguments(kw, arg):
    with pytest.raises(ValueError, match=f"^{arg}"):
        prompt_lookup(CTX, **kw)


@pytest.mark.parametrize("context", [jnp.array([0.5, 1.5]), jnp.zeros((2, 3), int), None, "abc"])
def test_prompt_lookup_refuses_bad_context(context):
    with pytest.raises(ValueError, match="^context"):
        prompt_lookup(context, num_drafts=2)


def test_prompt_lookup_under_jit_flags_a_bad_length():
    f = jax.jit(jax.vmap(lambda n: prompt_lookup(CTX, n, num_drafts=2)))
    d = f(jnp.array([7, -1, 99, 5], jnp.int32))
    np.testing.assert_array_equal(np.asarray(d.tokens[1:3]), -1)
    assert d.ngram[1:3].tolist() == [-1, -1] and d.num_drafts[1:3].tolist() == [0, 0]
    for i, n in ((0, 7), (3, 5)):
        eager = prompt_lookup(CTX, n, num_drafts=2)
        assert d.tokens[i].tolist() == eager.tokens.tolist() and int(d.ngram[i]) == int(eager.ngram) >= 0


@pytest.mark.parametrize("tokens,V,arg", [
    (jnp.array([7]), 5, "tokens"), (jnp.array([-1]), 5, "tokens"), (jnp.array([0.5]), 5, "tokens"),
    (None, 5, "tokens"), (jnp.array([0]), 0, "vocab_size"), (jnp.array([0]), 2.5, "vocab_size"),
])
def test_point_mass_refuses_bad_arguments(tokens, V, arg):
    with pytest.raises(ValueError, match=f"^{arg}"):
        point_mass(tokens, V)


def test_point_mass_under_jit_gives_nan_rows_for_out_of_range_ids():
    out = np.asarray(jax.jit(lambda t: point_mass(t, 3))(jnp.array([2, 3, -1, 0])))
    np.testing.assert_array_equal(out[[0, 3]], np.eye(3)[[2, 0]])
    assert np.all(np.isnan(out[1:3]))


@pytest.mark.parametrize("text", [5, None, 1.5, [104, 105]])
def test_encode_bytes_refuses_non_text(text):
    with pytest.raises(TypeError, match="^text"):
        encode_bytes(text)


def test_bytes_round_trip_and_decode_checks():
    for text in ("hi", "é\n", b"\x00\xff"):
        want = text.encode("utf-8") if isinstance(text, str) else text
        assert bytes(encode_bytes(text).tolist()) == want
    assert decode_bytes(encode_bytes("héllo")) == "héllo"
    assert decode_bytes([104, 105, 256, -1]) == "hi"
    with pytest.raises(ValueError, match="^tokens"):
        decode_bytes(np.array([65.7, 66.2]))
    with pytest.raises(ValueError, match="^tokens"):
        decode_bytes(None)


@pytest.mark.parametrize("name", ["x", 3, None])
def test_shipped_model_path_refuses_unknown_names(name):
    with pytest.raises(ValueError, match="^name"):
        shipped_model_path(name)


def test_hf_adapters_refuse_non_torch_input():
    pytest.importorskip("torch")
    from spectheory.models import HFCausalLM, torch_to_jax

    with pytest.raises(TypeError, match="^model"):
        HFCausalLM(None)
    with pytest.raises(TypeError, match="^t"):
        torch_to_jax([1.0])
