"""Brute-force dual bound over all token subsets (private; NumPy, float64, host only)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from spectheory._validation import check_count, is_concrete

__all__ = ["SubsetBound", "subset_bound", "MAX_SUBSET_V"]

#: Largest vocabulary :func:`subset_bound` enumerates (2**16 subsets).
MAX_SUBSET_V = 16


class SubsetBound(NamedTuple):
    """Result of :func:`subset_bound`.

    Attributes:
      value: α* = min over H of p(H) + 1 − Q(all drafts in H). # float
      certificate: a minimising H (fewest tokens among the minimisers, then lowest bitmask).
        # shape=[V], dtype=bool
    """

    value: float
    certificate: np.ndarray


def _host_array(x, name: str) -> np.ndarray:
    """``x`` as a NumPy array; ``TypeError`` naming the argument for a traced array (these
    references run on the host only) or a non-numeric object."""
    if not is_concrete(x):
        raise TypeError(f"{name}: this host-side reference needs concrete arrays, got a traced array (no jit/vmap)")
    a = np.asarray(x)
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    return a


def check_tuples(tuples, V: int, name: str = "tuples") -> np.ndarray:
    """Check draft tuples ``int[M, n]`` (``M, n >= 1``) with ids in ``[0, V)``; int64 copy."""
    t = _host_array(tuples, name)
    if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty int array of shape [M, n], got shape {t.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"{name}: expected integer token ids, got dtype {t.dtype}")
    if t.min() < 0 or t.max() >= V:
        raise ValueError(f"{name}: token id out of range [0, {V}) (got {t.min()}..{t.max()})")
    return t.astype(np.int64)


def _as_prob_vector(x, name: str) -> np.ndarray:
    a = _host_array(x, name)
    if a.dtype == bool:
        raise ValueError(f"{name}: expected a floating array, got dtype bool")
    a = a.astype(np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-d array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or inf")
    if np.any(a < 0):
        raise ValueError(f"{name}: contains negative entries (min {a.min():.3g})")
    if abs(a.sum() - 1) > 1e-8:
        raise ValueError(f"{name}: does not sum to 1 (|sum - 1| = {abs(a.sum() - 1):.3g})")
    return a


def validate_draft_law(p, tuples, probs, *, max_v: int | None = None):
    """Check ``p[V]``, ``tuples int[M, n]`` in ``[0, V)`` and ``probs[M]`` (host-side).

    Returns float64/int64 NumPy copies ``(p, tuples, probs)``.
    """
    p = _as_prob_vector(p, "p")
    V = p.size
    if max_v is not None and V > max_v:
        raise ValueError(f"p: V={V} is too large for brute force over subsets (at most {max_v} tokens)")
    t = check_tuples(tuples, V)
    w = _as_prob_vector(probs, "probs")
    if w.shape[0] != t.shape[0]:
        raise ValueError(f"probs: expected {t.shape[0]} entries (one per tuple), got {w.shape[0]}")
    return p, t, w


def _set_masks(tuples: np.ndarray) -> np.ndarray:
    """Bitmask of the token set of every tuple (``int64[M]``)."""
    return np.bitwise_or.reduce(np.left_shift(np.int64(1), tuples), axis=1)


def subset_bound(p, tuples, probs) -> SubsetBound:
    r"""Dual bound α* by brute force over every subset ``H`` of the vocabulary.

    .. math::

        \alpha^*(p, Q) = \min_{H \subseteq [V]} \Big[\, p(H) + 1
            - \sum_{\bar x :\, \mathrm{set}(\bar x) \subseteq H} Q(\bar x) \Big]

    for any draft law given by enumeration. :math:`Q(\mathrm{all}\in H)` is computed for all
    :math:`2^V` sets at once by a sum-over-subsets (zeta) transform, O(V 2^V + M n). This is the
    independent reference for :func:`optimal_acceptance` and :func:`lp_acceptance`.

    Args:
      p: target law, float[V] with V ≤ 16.
      tuples: draft tuples, int[M, n] with ids in ``[0, V)``; order and repeats are irrelevant.
      probs: their probabilities, float[M], summing to one.

    Returns:
      :class:`SubsetBound` ``(value, certificate)``.

    Raises:
      ValueError: V > 16, malformed arrays, or ``p``/``probs`` not probability vectors.
      TypeError: traced arguments (host only).

    Example:
      >>> import numpy as np
      >>> from spectheory.bounds import subset_bound
      >>> p = np.array([0.5, 0.3, 0.2]); q = np.array([0.2, 0.3, 0.5])
      >>> tuples = np.array([[i, j] for i in range(3) for j in range(3)])  # two iid drafts
      >>> probs = np.array([q[i] * q[j] for i, j in tuples])
      >>> res = subset_bound(p, tuples, probs)
      >>> round(res.value, 6), res.certificate.tolist()
      (0.86, [False, True, True])

    References:
      Hu et al. Towards Optimal Multi-draft Speculative Decoding. ICLR 2025, arXiv:2502.18779.
    """
    p, t, w = validate_draft_law(p, tuples, probs, max_v=MAX_SUBSET_V)
    V = p.size
    N = 1 << V
    f = np.bincount(_set_masks(t), weights=w, minlength=N)
    masks = np.arange(N, dtype=np.int64)
    pH = np.zeros(N)
    for i in range(V):  # zeta transform: f[H] = sum over S ⊆ H of f[S]; and p(H)
        bit = (masks >> i) & 1 == 1
        f[bit] += f[masks[bit] ^ (1 << i)]
        pH[bit] += p[i]
    values = pH + 1 - f
    best = values.min()
    size = _popcount(masks)
    cand = np.flatnonzero(values <= best + 1e-13)
    h = int(cand[np.lexsort((cand, size[cand]))[0]])
    cert = ((h >> np.arange(V)) & 1).astype(bool)
    return SubsetBound(float(best), cert)


def _popcount(x: np.ndarray) -> np.ndarray:
    c = np.zeros_like(x)
    y = x.copy()
    while np.any(y):
        c += y & 1
        y >>= 1
    return c
