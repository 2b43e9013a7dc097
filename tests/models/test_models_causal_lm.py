"""Tree helpers of the CausalLM contract: ancestry, depths and call layouts, NumPy == JAX."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from spectheory.models import chain_parents, tree_ancestors, tree_depths, tree_paths
from spectheory.models._causal_lm import call_layout


@st.composite
def forests(draw):
    T = draw(st.integers(1, 9))
    return np.array([draw(st.integers(-1, i - 1)) for i in range(T)], dtype=np.int32)


@given(forests())
def test_ancestors_and_depths_match_paths(parents):
    paths = tree_paths(parents)
    want = np.zeros((len(parents),) * 2, bool)
    for i, path in enumerate(paths):
        want[i, path] = True
    np.testing.assert_array_equal(tree_ancestors(parents, np), want)
    np.testing.assert_array_equal(tree_ancestors(jnp.asarray(parents)), want)
    np.testing.assert_array_equal(tree_depths(parents, np), [len(p) - 1 for p in paths])


def test_batched_and_jitted():
    parents = np.array([[-1, 0, 1, 1], [-1, -1, 0, 2]])
    got = jax.jit(tree_ancestors)(parents)
    for b in range(2):
        np.testing.assert_array_equal(got[b], tree_ancestors(parents[b], np))


def test_chain_parents_make_a_causal_mask():
    np.testing.assert_array_equal(chain_parents(4), [-1, 0, 1, 2])
    np.testing.assert_array_equal(tree_ancestors(chain_parents(4), np), np.tril(np.ones((4, 4))))
    np.testing.assert_array_equal(tree_depths(chain_parents(4), np), np.arange(4))


def test_call_layout_chain_with_padding():
    valid = np.array([[0, 1, 1, 0, 1]], bool)
    pos, mask = call_layout(np.array([3]), valid, None, np)
    np.testing.assert_array_equal(pos, [[-1, 3, 4, -1, 5]])
    want = np.array([[1, 0, 0, 0, 0],   # padding attends to itself only
                     [0, 1, 0, 0, 0],
                     [0, 1, 1, 0, 0],
                     [0, 0, 0, 1, 0],
                     [0, 1, 1, 0, 1]], bool)
    np.testing.assert_array_equal(mask[0], want)
    jpos, jmask = call_layout(jnp.array([3]), jnp.asarray(valid), None, jnp)
    np.testing.assert_array_equal(jpos, pos)
    np.testing.assert_array_equal(jmask, mask)


def test_call_layout_tree():
    parents = np.array([[-1, 0, 0, 2]])
    pos, mask = call_layout(np.array([5]), np.ones((1, 4), bool), parents, np)
    np.testing.assert_array_equal(pos, [[5, 6, 6, 7]])
    np.testing.assert_array_equal(mask[0], tree_ancestors(parents[0], np))
