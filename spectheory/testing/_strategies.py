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


@st.composite
def prob_vectors(draw, min_size: int = 1, max_size: int = 8, *, size: int | None = None,
                 dtype=np.float64, allow_zeros: bool = True):
    """Strategy for probability vectors float[V].

    Covers exact zeros, one-hot vectors, the uniform law and, for ``V > 16``, heavy-tailed
    (Student-t logits) laws drawn from a seed. Entries are non-negative and sum to one in
    ``dtype`` (up to its rounding).

    Args:
      min_size, max_size: range of ``V`` when ``size`` is not given.
      size: fixed ``V``.
      dtype: ``np.float64`` or ``np.float32``.
      allow_zeros: allow exact zeros (one-hot vectors included).

    Returns:
      A ``hypothesis`` ``SearchStrategy`` whose examples are NumPy arrays of shape ``(V,)``
      and dtype ``dtype`` (``V`` drawn from ``[min_size, max_size]`` unless ``size`` is given),
      non-negative and summing to one up to rounding; without ``allow_zeros`` every entry is
      positive.
    """
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


@st.composite
def prob_pairs(draw, min_size: int = 1, max_size: int = 8, *, size: int | None = None,
               dtype=np.float64, allow_zeros: bool = True):
    """Strategy for ``(p, q)`` pairs over a common vocabulary.

    Mixes independent laws with the edge cases verifiers get wrong: ``p == q``; one-hot ``p``;
    ``q`` zero on part of the vocabulary; ``q`` a tiny perturbation of ``p``
    (near-degenerate residual); ``p`` zero where ``q`` is positive. Without ``allow_zeros``
    the cases that need zeros fall back to independent laws.

    Args:
      min_size, max_size: range of ``V`` when ``size`` is not given.
      size: fixed ``V``.
      dtype: ``np.float64`` or ``np.float32``, the dtype of both vectors.
      allow_zeros: allow exact zeros in ``p`` and ``q`` (see :func:`prob_vectors`).

    Returns:
      A ``hypothesis`` ``SearchStrategy`` whose examples are tuples ``(p, q)`` of two NumPy
      probability vectors of the same shape ``(V,)`` and dtype ``dtype``, each non-negative
      and summing to one up to rounding.
    """
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
