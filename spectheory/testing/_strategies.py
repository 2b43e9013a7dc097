"""Hypothesis strategies for probability vectors and target/draft pairs."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

#: Above this size vectors are generated from a drawn seed instead of drawn entry by entry.
_ENTRYWISE_MAX = 16


def _normalize(w: np.ndarray, dtype) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    out = (w / w.sum()).astype(dtype)
    if dtype != np.float64:
        out = out / out.sum(dtype=np.float64)
        out = out.astype(dtype)
    return out


@st.composite
def _weights(draw, V: int, allow_zeros: bool):
    if V <= _ENTRYWISE_MAX:
        lo = 0 if allow_zeros else 1
        w = np.array(draw(st.lists(st.integers(lo, 30), min_size=V, max_size=V)), dtype=np.float64)
        if w.sum() == 0:
            w[draw(st.integers(0, V - 1))] = 1.0
        return w
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    logits = rng.standard_t(df=3, size=V) * draw(st.sampled_from([0.5, 1.0, 2.0]))
    w = np.exp(logits - logits.max())
    if allow_zeros:
        w[rng.random(V) < 0.1] = 0.0
        if w.sum() == 0:
            w[0] = 1.0
    return w


def _check_sizes(min_size, max_size, size, dtype) -> None:
    """Front door of the strategies: sizes are ints >= 1 (``min_size <= max_size``), ``dtype``
    float32 or float64; ``ValueError`` naming the argument, raised when the strategy is built."""
    from spectheory import _validation as _v

    _v.check_count(min_size, "min_size")
    _v.check_count(max_size, "max_size")
    if max_size < min_size:
        raise ValueError(f"max_size: expected >= min_size = {min_size}, got {max_size}")
    if size is not None:
        _v.check_count(size, "size")
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(f"dtype: expected np.float32 or np.float64, got {dtype!r}")


def prob_vectors(min_size: int = 1, max_size: int = 8, *, size: int | None = None, dtype=np.float64,
                 allow_zeros: bool = True) -> st.SearchStrategy:
    """Strategy for probability vectors float[V].

    Covers exact zeros, one-hot vectors, the uniform law and, for ``V > 16``, heavy-tailed
    (Student-t logits) laws drawn from a seed. Entries are non-negative and sum to one in
    ``dtype`` (up to its rounding).

    Args:
      min_size: smallest ``V`` when ``size`` is not given (int >= 1).
      max_size: largest ``V`` when ``size`` is not given (int >= ``min_size``).
      size: fixed ``V`` (int >= 1), or ``None``.
      dtype: ``np.float64`` or ``np.float32``.
      allow_zeros: allow exact zeros (one-hot vectors included).

    Returns:
      a hypothesis strategy of float[V] NumPy arrays.

    Raises:
      ValueError: naming ``min_size``, ``max_size``, ``size`` or ``dtype``, when called.

    >>> from hypothesis import given
    >>> @given(prob_vectors(size=3))
    ... def test(p):
    ...     assert p.shape == (3,) and abs(p.sum() - 1) < 1e-12
    >>> test()
    """
    _check_sizes(min_size, max_size, size, dtype)
    return _prob_vectors(min_size, max_size, size=size, dtype=dtype, allow_zeros=allow_zeros)


@st.composite
def _prob_vectors(draw, min_size: int = 1, max_size: int = 8, *, size: int | None = None,
                 dtype=np.float64, allow_zeros: bool = True):
    """The strategy behind :func:`prob_vectors` (arguments checked there)."""
    V = size if size is not None else draw(st.integers(min_size, max_size))
    kinds = ["weights", "uniform", "peaked"] + (["one_hot"] if allow_zeros else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "uniform":
        return _normalize(np.ones(V), dtype)
    if kind == "one_hot":
        w = np.zeros(V)
        w[draw(st.integers(0, V - 1))] = 1.0
        return _normalize(w, dtype)
    w = draw(_weights(V, allow_zeros))
    if kind == "peaked":
        w = w**3
        if w.sum() == 0:
            w[0] = 1.0
    return _normalize(w, dtype)


def prob_pairs(min_size: int = 1, max_size: int = 8, *, size: int | None = None, dtype=np.float64,
               allow_zeros: bool = True) -> st.SearchStrategy:
    """Strategy for ``(p, q)`` pairs over a common vocabulary.

    Mixes independent laws with the edge cases verifiers get wrong: ``p == q``; one-hot ``p``;
    ``q`` zero on part of the vocabulary; ``q`` a tiny perturbation of ``p``
    (near-degenerate residual); ``p`` zero where ``q`` is positive.

    Args:
      min_size: smallest ``V`` when ``size`` is not given (int >= 1).
      max_size: largest ``V`` when ``size`` is not given (int >= ``min_size``).
      size: fixed ``V`` (int >= 1), or ``None``.
      dtype: ``np.float64`` or ``np.float32``.
      allow_zeros: allow exact zeros.

    Returns:
      a hypothesis strategy of ``(p, q)`` pairs of float[V] NumPy arrays.

    Raises:
      ValueError: naming ``min_size``, ``max_size``, ``size`` or ``dtype``, when called.
    """
    _check_sizes(min_size, max_size, size, dtype)
    return _prob_pairs(min_size, max_size, size=size, dtype=dtype, allow_zeros=allow_zeros)


@st.composite
def _prob_pairs(draw, min_size: int = 1, max_size: int = 8, *, size: int | None = None,
               dtype=np.float64, allow_zeros: bool = True):
    """The strategy behind :func:`prob_pairs` (arguments checked there)."""
    V = size if size is not None else draw(st.integers(min_size, max_size))
    kind = draw(st.sampled_from(["independent", "equal", "one_hot_p", "sparse_q", "near", "p_zero_where_q"]))
    vec = prob_vectors(size=V, dtype=np.float64, allow_zeros=allow_zeros)
    p = draw(vec)
    if kind == "equal":
        q = p.copy()
    elif kind == "near":
        eps = draw(st.sampled_from([1e-12, 1e-9, 1e-6]))
        q = (1 - eps) * p + eps * draw(prob_vectors(size=V, allow_zeros=False))
    else:
        q = draw(vec)
        if kind == "one_hot_p" and allow_zeros:
            p = np.zeros(V)
            p[draw(st.integers(0, V - 1))] = 1.0
        elif kind == "sparse_q" and allow_zeros and V > 1:
            q = q * (np.arange(V) % 2 == draw(st.integers(0, 1)))
            if q.sum() == 0:
                q[0] = 1.0
        elif kind == "p_zero_where_q" and allow_zeros and V > 1:
            p = p * (q == q.min())
            if p.sum() == 0:
                p = np.ones(V)
    return _normalize(p, dtype), _normalize(q, dtype)
