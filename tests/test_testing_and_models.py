"""The hypothesis strategies produce valid laws; TableLM behaves as documented."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from spectheory.models import TableLM
from spectheory.testing import prob_pairs, prob_vectors


@given(prob_vectors(1, 40))
def test_prob_vectors_are_distributions(p):
    assert p.ndim == 1 and np.all(p >= 0)
    np.testing.assert_allclose(p.sum(), 1.0, atol=1e-12)


@given(prob_vectors(size=5000, dtype=np.float32))
@settings(max_examples=10)
def test_large_float32_vectors(p):
    assert p.dtype == np.float32 and p.shape == (5000,)
    np.testing.assert_allclose(p.sum(dtype=np.float64), 1.0, atol=1e-5)


@given(prob_pairs(1, 8))
def test_prob_pairs_share_vocab(pq):
    p, q = pq
    assert p.shape == q.shape
    np.testing.assert_allclose([p.sum(), q.sum()], [1.0, 1.0], atol=1e-12)
    assert np.all(p >= 0) and np.all(q >= 0)


def test_prob_pairs_cover_edge_cases():
    """The strategy must actually produce p == q, one-hot p and zeros in q."""
    seen = {"equal": False, "one_hot": False, "q_zero": False}

    @given(prob_pairs(2, 6))
    @settings(max_examples=150)
    def collect(pq):
        p, q = pq
        seen["equal"] |= bool(np.array_equal(p, q))
        seen["one_hot"] |= bool(np.sum(p > 0) == 1)
        seen["q_zero"] |= bool(np.any(q == 0))

    collect()
    assert all(seen.values()), seen


def test_table_lm_probabilities():
    lm = TableLM(2, {(): [0.25, 0.75], (0,): [1.0, 0.0], (1,): [0.5, 0.5]})
    np.testing.assert_allclose(lm.sequence_prob((1, 0)), 0.375)
    np.testing.assert_allclose(lm.sequence_prob((0, 0)), 0.25)
    np.testing.assert_allclose(lm.laws((), (1,)), [[0.25, 0.75], [0.5, 0.5]])
    with pytest.raises(KeyError):
        lm.next_law((0, 0))


def test_table_lm_random_and_validation():
    lm = TableLM.random(3, 2, seed=0, zero_prob=0.5)
    total = sum(lm.sequence_prob((a, b)) for a in range(3) for b in range(3))
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    with pytest.raises(ValueError, match="not a probability vector"):
        TableLM(2, {(): [0.5, 0.6]}).next_law(())
    with pytest.raises(ValueError, match="shape"):
        TableLM(2, {(): [1.0]}).next_law(())
    mixed = TableLM.context_free([1.0, 0.0]).mix(TableLM.context_free([0.0, 1.0]), 0.25)
    np.testing.assert_allclose(mixed.next_law((1, 1)), [0.75, 0.25])
