"""Bad input to the draft schemes: eagerly a ``ValueError``/``TypeError`` whose message starts
with the argument's name; under ``jax.jit`` the documented flags (draft id ``-1``; children:
every slot ``-1`` and invalid), never a plausible draw; legal input under jit gives the eager
draws, including a float32 law at the edge of the sum tolerance.

Each jitted check compiles once per function: the bad and the legal laws are stacked and run
through one ``jax.jit(jax.vmap(...))``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from spectheory import drafts

KEY = jax.random.key(0)
GOOD = np.array([0.2, 0.5, 0.3])

SAMPLERS = {
    "iid": drafts.iid_sample,
    "without_replacement": drafts.without_replacement_sample,
    "greedy": drafts.greedy_sample,
    "hub": drafts.hub_sample,
}
LAWS = {
    "iid": drafts.iid_law,
    "without_replacement": drafts.without_replacement_law,
    "greedy": drafts.greedy_law,
    "hub": drafts.hub_law,
}
CHILDREN = {
    "iid": drafts.iid_children,
    "without_replacement": drafts.without_replacement_children,
    "greedy": drafts.greedy_children,
}

# laws that are not a 1-d probability vector (values, shapes, types)
BAD_Q_VALUES = {
    "nan": [np.nan, 0.5, 0.5],
    "inf": [np.inf, 0.0, 0.0],
    "negative": [1.2, -0.2, 0.0],
    "unnormalised": [0.5, 0.5, 0.5],
    "zero": [0.0, 0.0, 0.0],
}
BAD_Q = dict(BAD_Q_VALUES, **{
    "2d": np.full((2, 3), 1 / 3),
    "0d": 1.0,
    "empty": np.zeros(0),
    "str": "abc",
    "None": None,
    "ragged": [[0.5], [0.25, 0.25]],
})
BAD_N = {"0": 0, "-1": -1, "2.5": 2.5, "True": True, "None": None, "str": "2"}
BAD_KEY = {"None": None, "int": 0, "split": jax.random.split(KEY, 2), "float": np.zeros(2), "str": "k"}
BAD_LOGQ = {
    "nan": [np.nan, 0.0, -1.0],
    "+inf": [np.inf, 0.0, 0.0],
    "all -inf": [-np.inf] * 3,
    "unnormalised": [0.0, 0.0, 0.0],
    "2d": np.log(np.full((2, 3), 1 / 3)),
    "int": np.array([0, 0, 0]),
    "None": None,
}


def _arr(x):
    return x if x is None or isinstance(x, str) or (isinstance(x, list) and x and isinstance(x[0], list)) else jnp.asarray(x)


# --- eager: ValueError naming the argument --------------------------------------------------------

@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("case", BAD_Q)
def test_sample_refuses_bad_q(name, case):
    with pytest.raises(ValueError, match="^q"):
        SAMPLERS[name](KEY, _arr(BAD_Q[case]), 2)


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("case", BAD_N)
def test_sample_refuses_bad_n(name, case):
    with pytest.raises(ValueError, match="^n"):
        SAMPLERS[name](KEY, jnp.asarray(GOOD), BAD_N[case])


@pytest.mark.parametrize("name", ["without_replacement", "greedy", "hub"])
def test_sample_refuses_n_above_the_support(name):
    with pytest.raises(ValueError, match="^n"):
        SAMPLERS[name](KEY, jnp.array([0.0, 1.0, 0.0]), 2)
    with pytest.raises(ValueError, match="^n"):
        SAMPLERS[name](KEY, jnp.asarray(GOOD), 4)


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("case", BAD_KEY)
def test_sample_refuses_bad_key(name, case):
    with pytest.raises(ValueError, match="^key"):
        SAMPLERS[name](BAD_KEY[case], jnp.asarray(GOOD), 2)


def test_sample_accepts_a_raw_key_and_integer_laws():
    """``jax.random.PRNGKey`` keys are keys; an integer one-hot law is a law."""
    for name, f in SAMPLERS.items():
        d = f(jax.random.PRNGKey(0), jnp.asarray(GOOD), 2)
        assert d.shape == (2,) and np.all((np.asarray(d) >= 0) & (np.asarray(d) < 3)), name
    assert drafts.iid_sample(KEY, jnp.array([0, 1, 0]), 3).tolist() == [1, 1, 1]


@pytest.mark.parametrize("name", LAWS)
@pytest.mark.parametrize("case", BAD_Q)
def test_law_refuses_bad_q(name, case):
    with pytest.raises(ValueError, match="^q"):
        LAWS[name](BAD_Q[case], 2)


@pytest.mark.parametrize("name", LAWS)
@pytest.mark.parametrize("case", BAD_N)
def test_law_refuses_bad_n(name, case):
    with pytest.raises(ValueError, match="^n"):
        LAWS[name](GOOD, BAD_N[case])


@pytest.mark.parametrize("name", LAWS)
def test_law_refuses_a_traced_q(name):
    """The enumerated laws run on the host: a clear TypeError under jit, not a tracer error."""
    with pytest.raises(TypeError, match="^q"):
        jax.jit(lambda q: LAWS[name](q, 2)[1])(jnp.asarray(GOOD))


@pytest.mark.parametrize("name", CHILDREN)
@pytest.mark.parametrize("case", BAD_LOGQ)
def test_children_refuse_bad_logq(name, case):
    with pytest.raises(ValueError, match="^logq"):
        CHILDREN[name](KEY, _arr(BAD_LOGQ[case]), 2)


@pytest.mark.parametrize("name", CHILDREN)
@pytest.mark.parametrize("case", BAD_N)
def test_children_refuse_bad_b(name, case):
    with pytest.raises(ValueError, match="^b"):
        CHILDREN[name](KEY, jnp.log(jnp.asarray(GOOD)), BAD_N[case])


@pytest.mark.parametrize("name", CHILDREN)
@pytest.mark.parametrize("case", BAD_KEY)
def test_children_refuse_bad_key(name, case):
    with pytest.raises(ValueError, match="^key"):
        CHILDREN[name](BAD_KEY[case], jnp.log(jnp.asarray(GOOD)), 2)


@pytest.mark.parametrize("q,n,arg", [
    ([np.nan, 0.5, 0.5], 2, "q"), ([np.inf, 0.0, 0.0], 2, "q"), (np.ones((2, 3)) / 3, 2, "q"),
    (None, 2, "q"), ("abc", 2, "q"), (GOOD, 0, "n"), (GOOD, -1, "n"), (GOOD, 2.5, "n"),
    (GOOD, True, "n"), (GOOD, 5, "n"),
])
def test_greedy_top_refuses_bad_input(q, n, arg):
    with pytest.raises(ValueError, match=f"^{arg}"):
        drafts.greedy_top(_arr(q), n)


def test_greedy_top_takes_laws_and_log_laws():
    """Independent route: the ``n - 1`` largest by a plain sort (ties to the lower id)."""
    q = np.array([0.3, 0.1, 0.3, 0.3])
    want = sorted(range(4), key=lambda i: (-q[i], i))[:2]
    assert drafts.greedy_top(jnp.asarray(q), 3).tolist() == want
    assert drafts.greedy_top(jnp.log(jnp.asarray(q)), 3).tolist() == want
    assert drafts.greedy_top(jnp.asarray(q), 5).tolist() == sorted(range(4), key=lambda i: (-q[i], i))
    assert drafts.greedy_top(jnp.asarray(q), 1).shape == (0,)


# --- jit: flags on invalid laws, the eager draws on legal ones -------------------------------------

def _stack(rows, dtype=np.float64):
    return jnp.asarray(np.array(rows, dtype=dtype))


LEGAL_Q = [GOOD, [0.7, 0.3, 0.0], [0.25, 0.25, 0.5]]


@pytest.mark.parametrize("name", SAMPLERS)
def test_sample_under_jit_flags_invalid_laws_and_matches_eager_on_legal(name):
    f = SAMPLERS[name]
    bad = list(BAD_Q_VALUES.values())
    Q = _stack(bad + LEGAL_Q)
    keys = jax.random.split(jax.random.key(3), len(Q))
    got = np.asarray(jax.jit(jax.vmap(lambda k, q: f(k, q, 2)))(keys, Q))
    assert got.shape == (len(Q), 2)
    np.testing.assert_array_equal(got[: len(bad)], -1)  # every invalid law: the flag only
    for i, q in enumerate(LEGAL_Q):
        eager = np.asarray(f(keys[len(bad) + i], jnp.asarray(q), 2))
        np.testing.assert_array_equal(got[len(bad) + i], eager)
        assert np.all(np.asarray(q)[eager] > 0)  # drafts have positive mass (independent check)


@pytest.mark.parametrize("name", ["without_replacement", "greedy"])
def test_sample_under_jit_flags_drafts_beyond_the_support(name):
    """n = 3 from a law with two tokens of positive mass: the two drafts, then -1 (eagerly an
    error); greedy's top token comes first (independent: the argmax)."""
    f = SAMPLERS[name]
    q = jnp.array([0.0, 0.6, 0.0, 0.4])
    got = np.asarray(jax.jit(f, static_argnums=2)(KEY, q, 3))
    assert sorted(got[:2].tolist()) == [1, 3] and got[2] == -1
    if name == "greedy":
        assert got[0] == 1


def test_hub_under_jit_flags_a_law_with_one_token():
    got = np.asarray(jax.jit(drafts.hub_sample)(KEY, jnp.array([0.0, 1.0, 0.0])))
    np.testing.assert_array_equal(got, [-1, -1])


@pytest.mark.parametrize("name", SAMPLERS)
def test_float32_law_at_the_tolerance_edge_is_legal_eagerly_and_under_jit(name):
    """|sum - 1| = 5e-5 < 1e-4 (the float32 tolerance): eager accepts, jit does not flag, same
    draws; 5e-3 off is refused eagerly and flagged under jit."""
    f = SAMPLERS[name]
    ok = jnp.array([0.5, 0.29995, 0.2], jnp.float32)
    off = jnp.array([0.5, 0.295, 0.2], jnp.float32)
    k = jax.random.key(11)
    jf = jax.jit(f, static_argnums=2)
    np.testing.assert_array_equal(np.asarray(jf(k, ok, 2)), np.asarray(f(k, ok, 2)))
    assert np.all(np.asarray(jf(k, ok, 2)) >= 0)
    with pytest.raises(ValueError, match="^q: does not sum to 1"):
        f(k, off, 2)
    np.testing.assert_array_equal(np.asarray(jf(k, off, 2)), -1)


@pytest.mark.parametrize("name", CHILDREN)
def test_children_under_jit_flag_invalid_logq_and_match_eager_on_legal(name):
    f = CHILDREN[name]
    bad = [BAD_LOGQ[c] for c in ("nan", "+inf", "all -inf", "unnormalised")]
    with np.errstate(divide="ignore"):
        legal = [np.log(np.asarray(q)) for q in LEGAL_Q]
    L = _stack(bad + legal)
    keys = jax.random.split(jax.random.key(5), len(L))
    tok, valid = jax.jit(jax.vmap(lambda k, l: f(k, l, 3)))(keys, L)
    tok, valid = np.asarray(tok), np.asarray(valid)
    np.testing.assert_array_equal(tok[: len(bad)], -1)
    assert not np.any(valid[: len(bad)])
    for i, lq in enumerate(legal):
        t1, v1 = f(keys[len(bad) + i], jnp.asarray(lq), 3)
        np.testing.assert_array_equal(tok[len(bad) + i], np.asarray(t1))
        np.testing.assert_array_equal(valid[len(bad) + i], np.asarray(v1))
        assert np.any(v1)  # a legal law always has a child


def test_greedy_top_under_jit_flags_nan():
    got = jax.jit(drafts.greedy_top, static_argnums=1)(jnp.array([np.nan, 1.0, 0.0]), 3)
    np.testing.assert_array_equal(np.asarray(got), [-1, -1])
    got = jax.jit(drafts.greedy_top, static_argnums=1)(jnp.array([0.1, 0.6, 0.3]), 3)
    assert got.tolist() == [1, 2]


# --- legal input: the laws are laws (an independent route) -----------------------------------------

@settings(max_examples=15)
@given(w=st.lists(st.integers(0, 5), min_size=2, max_size=5).filter(lambda w: sum(1 for x in w if x) >= 2),
       n=st.integers(1, 3), name=st.sampled_from(sorted(LAWS)))
def test_law_of_integer_weights_sums_to_one_and_has_the_marginal(w, n, name):
    """For q from integer weights: the law sums to one, every listed tuple has positive
    probability, and the first draft's marginal is q itself (true of iid, without replacement
    and hub; greedy's first draft is the argmax when n > 1)."""
    q = np.array(w, float) / sum(w)
    support = int(np.sum(q > 0))
    if (name != "iid" and n > support) or (name == "hub" and n != 2):
        with pytest.raises(ValueError, match="^n"):
            LAWS[name](q, n)
        return
    tuples, probs = LAWS[name](q, n)
    np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-12)
    assert np.all(probs > 0) and tuples.shape == (len(probs), n)
    first = np.bincount(tuples[:, 0], weights=probs, minlength=len(q))
    if name == "greedy" and n > 1:
        want = np.zeros(len(q))
        want[sorted(range(len(q)), key=lambda i: (-q[i], i))[0]] = 1.0
    else:
        want = q
    np.testing.assert_allclose(first, want, atol=1e-12)
