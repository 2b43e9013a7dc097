"""Vocabulary trimming of the drafter (VocabTrim) and its cost in acceptance (private)."""

from __future__ import annotations

from typing import Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from spectheory._registry import DraftScheme
from spectheory._validation import as_probs, is_concrete, same_vocab
from spectheory.sampling._traced import any_traced, nan_where, probs_ok
from spectheory.bounds._optimal import (
    _broadcast_pq,
    _check_family_n,
    _check_num_nodes,
    _optimal_core,
    _resolve_family,
)

__all__ = ["trim_draft", "trimmed_acceptance", "trimmed_optimal_acceptance"]


def _check_frequency(frequency, V):
    if frequency is None:
        return None
    f = jnp.asarray(frequency) if is_concrete(frequency) else frequency
    if f.dtype == bool or not (jnp.issubdtype(f.dtype, jnp.floating) or jnp.issubdtype(f.dtype, jnp.integer)):
        raise ValueError(f"frequency: expected numeric counts or frequencies, got dtype {f.dtype}")
    if f.ndim == 0 or f.shape[-1] != V:
        raise ValueError(f"frequency: expected last axis {V}, got shape {tuple(f.shape)}")
    if is_concrete(f):
        ff = np.asarray(f, dtype=np.float64)
        if not np.all(np.isfinite(ff)) or np.any(ff < 0):
            raise ValueError("frequency: expected finite non-negative counts or frequencies")
    return f


def _check_ms(ms, V, name="ms"):
    arr = np.asarray(ms) if is_concrete(ms) else None
    if arr is None:
        scalar = jnp.ndim(ms) == 0
        m = jnp.atleast_1d(ms)
        if not jnp.issubdtype(m.dtype, jnp.integer) or m.ndim != 1:
            raise ValueError(f"{name}: expected an int or a 1-d int array of vocabulary sizes")
        return m, scalar
    scalar = arr.ndim == 0
    arr = np.atleast_1d(arr)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name}: expected ints (or a 1-d int array) in [1, {V}], got {ms!r}")
    if arr.min() < 1 or arr.max() > V:
        raise ValueError(f"{name}: kept vocabulary sizes must lie in [1, {V}], got {arr.min()}..{arr.max()}")
    return jnp.asarray(arr, jnp.int32), scalar


def _traced_ok(p, q, freq, m, V):
    """Validity under ``jit``/``vmap``: rows ``ok[...]`` of the laws and frequencies, and
    ``m_ok[M]`` of the kept sizes (``1 <= m <= V``)."""
    ok = probs_ok(q)
    if p is not None:
        ok = ok & probs_ok(p)
    if freq is not None:
        ok = ok & jnp.all((freq >= 0) & (freq < jnp.inf), -1)
    return ok, (m >= 1) & (m <= V)


def _rank_order(freq):
    """Sort keys for "most frequent first, ties to the lower index"; returns a ``kept(m)`` fn."""
    V = freq.shape[-1]
    iota = lax.broadcasted_iota(jnp.int32, freq.shape, freq.ndim - 1)
    key = -freq
    sk, si = lax.sort((key, iota), dimension=freq.ndim - 1, num_keys=1, is_stable=True)

    def kept(m):
        k = jnp.clip(m - 1, 0, V - 1)
        kk = sk[..., k][..., None]
        ki = si[..., k][..., None]
        return (key < kk) | ((key == kk) & (iota <= ki))

    return kept


def _trim(q, kept):
    w = jnp.where(kept, q, 0)
    Z = jnp.sum(w, -1, keepdims=True)
    return w / jnp.where(Z > 0, Z, 1), Z[..., 0]


def _prepare(p, q, frequency, ms, ms_name="ms"):
    if p is not None:
        p = as_probs(p, "p", ndim=None)
    q = as_probs(q, "q", ndim=None)
    V = q.shape[-1]
    if p is not None:
        same_vocab(p, q)
        p, q, lead = _broadcast_pq(p, q)
    else:
        q = q.astype(jnp.result_type(q.dtype, jnp.float32))
        lead = q.shape[:-1]
    freq = _check_frequency(frequency, V)
    traced = any_traced(p, q, freq, ms)
    if freq is None:
        freq = q
    else:
        lead = jnp.broadcast_shapes(lead, freq.shape[:-1])
        freq = jnp.broadcast_to(freq.astype(q.dtype), lead + (V,))
        q = jnp.broadcast_to(q, lead + (V,))
        if p is not None:
            p = jnp.broadcast_to(p, lead + (V,))
    m, scalar = _check_ms(ms, V, ms_name)
    checks = _traced_ok(p, q, None if frequency is None else freq, m, V) if traced else None
    return p, q, freq, m, scalar, lead, checks


def trim_draft(q, m, frequency=None) -> jax.Array:
    r"""The draft law restricted to its ``m`` most frequent tokens and renormalised (VocabTrim).

    .. math::

        q_m(x) = \frac{q(x)\,[x \in K_m]}{q(K_m)}, \qquad
        K_m = \text{the } m \text{ tokens of highest frequency}

    Ranking by ``frequency`` (descending, ties to the lower token id); by default each row of
    ``q`` is ranked by its own probabilities (the most likely ``m`` tokens). A row whose kept
    tokens carry no draft mass is returned as all zeros.

    Args:
      q: draft law, float[..., V].
      m: number of kept tokens, int in ``[1, V]``.
      frequency: optional token frequencies, float[..., V] (e.g. corpus counts), broadcast
        against ``q``.

    Returns:
      float[..., V] trimmed draft law; under ``jit``/``vmap`` NaN rows for an invalid ``q``,
      ``frequency`` or ``m``.

    Raises:
      ValueError: (eager) ``q`` not a law, ``m`` not an int in ``[1, V]``, bad ``frequency``.

    Example:
      >>> import jax.numpy as jnp
      >>> from spectheory.bounds import trim_draft
      >>> [round(float(x), 4) for x in trim_draft(jnp.array([0.1, 0.6, 0.3]), 2)]
      [0.0, 0.6667, 0.3333]

    References:
      Goel et al. VocabTrim: Vocabulary Pruning for Efficient Speculative Decoding in LLMs.
      2025, arXiv:2506.22694.
    """
    if is_concrete(m) and (isinstance(m, bool) or np.ndim(m) != 0):
        raise ValueError(f"m: expected a single int, got {m!r}")
    _, q, freq, mm, scalar, _, checks = _prepare(None, q, frequency, m, "m")
    if not scalar:
        raise ValueError(f"m: expected a single int, got {m!r}")
    out, _ = _trim(q, _rank_order(freq)(mm[0]))
    if checks is not None:
        ok, m_ok = checks
        out = nan_where(ok & m_ok[0], out)
    return out


def trimmed_acceptance(p, q, ms, frequency=None) -> jax.Array:
    r"""Single-draft acceptance after trimming the drafter to ``m`` tokens, for each ``m``.

    .. math::

        \alpha_1(m) = \sum_x \min\big(p(x), q_m(x)\big) = 1 - \mathrm{TV}(p, q_m)

    with :math:`q_m` from :func:`trim_draft`. Rows whose kept tokens have no draft mass get 0.

    Args:
      p: target law, float[..., V].
      q: draft law, float[..., V].
      ms: kept vocabulary sizes, int or int[M], each in ``[1, V]``.
      frequency: optional frequencies, float[..., V]; default: each row of ``q`` ranks itself.

    Returns:
      float[..., M] (float[...] for a scalar ``ms``); NaN under ``jit``/``vmap`` for an
      invalid law, frequency row or kept size.

    Raises:
      ValueError: (eager) ``p``/``q`` not laws over the same vocabulary, a kept size outside
        ``[1, V]`` or not an int, bad ``frequency``.

    Example:
      >>> import jax.numpy as jnp
      >>> from spectheory.bounds import trimmed_acceptance
      >>> p = jnp.array([0.2, 0.5, 0.3]); q = jnp.array([0.1, 0.6, 0.3])
      >>> [round(float(a), 4) for a in trimmed_acceptance(p, q, [1, 2, 3])]
      [0.5, 0.8, 0.9]

    References:
      Goel et al. VocabTrim. 2025, arXiv:2506.22694; Leviathan et al. 2023, arXiv:2211.17192.
    """
    p, q, freq, ms_arr, scalar, lead, checks = _prepare(p, q, frequency, ms)
    kept = _rank_order(freq)

    def one(m):
        qm, Z = _trim(q, kept(m))
        return jnp.where(Z > 0, jnp.sum(jnp.minimum(p, qm), -1), 0)

    out = jnp.moveaxis(lax.map(one, ms_arr), 0, -1)
    if checks is not None:
        ok, m_ok = checks
        out = jnp.where(ok[..., None] & m_ok, out, jnp.nan)
    return out[..., 0] if scalar else out


def trimmed_optimal_acceptance(p, q, n: int, ms, scheme: Union[str, DraftScheme] = "iid", frequency=None, *,
                               num_nodes: int | None = None) -> jax.Array:
    r"""Optimal ``n``-draft acceptance α* of the trimmed drafter, for each kept size ``m``.

    .. math::

        \alpha^*(m) = \min_H \big[\, p(H) + 1 - Q_m(\text{all drafts} \in H) \big],

    where :math:`Q_m` draws ``n`` drafts from :math:`q_m` (:func:`trim_draft`) with ``scheme``;
    see :func:`optimal_acceptance`. (Trimming usually costs acceptance, but it can raise it when
    the drafter puts mass on tokens the target rarely emits.)

    Args:
      p: target law, float[..., V].
      q: draft law, float[..., V].
      n: number of drafts (static).
      ms: kept vocabulary sizes, int or int[M].
      scheme: a :class:`spectheory.DraftScheme` or a registered name (static), dispatched on
        its ``family`` (``"iid"``, ``"without_replacement"`` or ``"greedy"``).
      frequency: optional frequencies, float[..., V]; default: each row of ``q`` ranks itself.
      num_nodes: quadrature nodes (see :func:`optimal_acceptance`).

    Returns:
      float[..., M] (float[...] for a scalar ``ms``); under ``jit``/``vmap`` NaN where the
      eager call would raise.

    Raises:
      ValueError: (eager) as :func:`optimal_acceptance` and :func:`trimmed_acceptance`, or a
        kept size leaving fewer than ``n`` tokens with positive draft mass for the schemes
        that draw distinct tokens.

    Example:
      >>> import jax.numpy as jnp
      >>> from spectheory.bounds import trimmed_optimal_acceptance
      >>> p = jnp.array([0.2, 0.5, 0.3]); q = jnp.array([0.1, 0.6, 0.3])
      >>> [round(float(a), 4) for a in trimmed_optimal_acceptance(p, q, 2, [1, 2, 3])]
      [0.5, 0.8, 0.99]

    References:
      Goel et al. VocabTrim. 2025, arXiv:2506.22694; Hu et al. ICLR 2025, arXiv:2502.18779.
    """
    s, family = _resolve_family(scheme)
    num_nodes = _check_num_nodes(num_nodes)
    p, q, freq, ms_arr, scalar, lead, checks = _prepare(p, q, frequency, ms)
    V = q.shape[-1]
    n = _check_family_n(s, family, n, V, None)
    kept = _rank_order(freq)
    if family != "iid" and is_concrete(q) and is_concrete(ms_arr) and q.size:
        for m in np.asarray(ms_arr):
            s = int(np.min(np.sum(np.asarray(kept(jnp.int32(m)) & (q > 0)), axis=-1)))
            if s < n:
                raise ValueError(
                    f"ms: trimming to m={int(m)} leaves {s} tokens of positive draft mass, fewer than n={n}"
                )
    pf = p.reshape(-1, V)

    def one(m):
        km = kept(m)
        qm, Z = _trim(q, km)
        val, _ = _optimal_core(pf, qm.reshape(-1, V), n, family, num_nodes)
        val = jnp.where(Z.reshape(-1) > 0, val, 0).reshape(lead)
        if checks is not None and family != "iid":
            val = jnp.where(jnp.sum(km & (q > 0), -1) >= n, val, jnp.nan)
        return val

    out = jnp.moveaxis(lax.map(one, ms_arr), 0, -1)
    if checks is not None:
        ok, m_ok = checks
        out = jnp.where(ok[..., None] & m_ok, out, jnp.nan)
    return out[..., 0] if scalar else out
