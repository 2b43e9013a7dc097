"""Drafts without replacement: n sequential draws from q, each excluding the earlier ones."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _validation as _v
from spectheory._registry import DraftScheme
from spectheory.drafts import _checks as _c
from spectheory.drafts._iid import MAX_LAW_SIZE


def without_replacement_children(key: jax.Array, logq: jax.Array, b: int) -> tuple[jax.Array, jax.Array]:
    r"""Draw up to ``b`` distinct children from a log draft law by Gumbel-top-``b``: the tree
    form of :func:`without_replacement_sample`.

    With :math:`g_x` i.i.d. Gumbel(0, 1) (one per token, ``jax.random.gumbel(key, (V,))``),
    the children are the indices of the largest :math:`\log q(x) + g_x` over the tokens of
    positive mass, in decreasing order:

    .. math:: (c_1, \dots, c_m) = \operatorname{arg\,top}_m\big(\log q(x) + g_x\big),
        \qquad m = \min(b, \#\{x : q(x) > 0\}).

    When ``q`` has fewer than ``b`` tokens of positive mass the ``m`` valid children come
    first (``valid``) and have the law ``without_replacement_law(q, m)``; the other slots
    hold token 0. Eagerly the arguments are checked; under ``jax.jit`` (traced ``logq``) an
    invalid ``logq`` (NaN, ``+inf``, no finite entry, or ``exp(logq)`` not summing to one
    within the eager tolerance) gives the flag: every slot ``-1`` and invalid. One node per
    call (``jax.vmap`` for many).

    Args:
      key: a ``jax.random`` key (a single key).
      logq: float[V] log-probabilities (``-inf`` for tokens of zero mass).
      b: fan-out (static), a positive int.

    Returns:
      ``(tokens int32[b], valid bool[b])``.

    Raises:
      ValueError: (eagerly) a bad ``key``, ``b``, or ``logq`` (values checked when concrete).

    >>> import jax, jax.numpy as jnp
    >>> tok, ok = without_replacement_children(jax.random.key(0), jnp.log(jnp.array([0.5, 0.0, 0.5])), 3)
    >>> sorted(tok[:2].tolist()), ok.tolist()
    ([0, 2], [True, True, False])

    References:
      Kool, van Hoof, Welling. Stochastic Beams and Where to Find Them: The Gumbel-Top-k
      Trick for Sampling Sequences Without Replacement, ICML 2019 (arXiv 1903.06059);
      Jeon et al., Recursive Speculative Decoding (arXiv 2402.14160), RSD-C.
    """
    return _c.checked_children(_children_core, key, logq, b)


def _children_core(key, logq, b):
    V = logq.shape[-1]
    g = jax.random.gumbel(key, (V,), logq.dtype)
    vals, tok = jax.lax.top_k(jnp.where(logq > -jnp.inf, logq + g, -jnp.inf), min(b, V))
    valid = vals > -jnp.inf
    tok = jnp.where(valid, tok, 0).astype(jnp.int32)
    if b > V:
        tok = jnp.concatenate([tok, jnp.zeros((b - V,), jnp.int32)])
        valid = jnp.concatenate([valid, jnp.zeros((b - V,), bool)])
    return tok, valid


def without_replacement_sample(key: jax.Array, q: jax.Array, n: int) -> jax.Array:
    r"""Draw ``n`` distinct drafts from ``q`` by Gumbel-top-k.

    With :math:`g_x` i.i.d. Gumbel(0, 1), the indices of the ``n`` largest
    :math:`\log q(x) + g_x`, in decreasing order, have exactly the law of ``n`` sequential
    draws without replacement:

    .. math::
        Q(x_1, \dots, x_n) = \prod_{j=1}^{n} \frac{q(x_j)}{1 - \sum_{i<j} q(x_i)}.

    The same draws as :func:`without_replacement_children` on ``log q`` for the same key.
    One draft law per call: a batched (2-d) ``q`` is refused (``jax.vmap`` over rows
    instead). Under ``jax.jit`` an invalid ``q`` (NaN/inf, a negative entry, a sum off by more
    than the eager tolerance) gives the flag: every draft ``-1``; drafts beyond the support of
    a traced ``q`` are ``-1`` too.

    Args:
      key: a ``jax.random`` key (a single key).
      q: draft law, float[V]; needs at least ``n`` tokens of positive mass.
      n: number of drafts (static), ``n <= #{x : q(x) > 0}``.

    Returns:
      int32[n] distinct token ids, in draw order (``-1`` flags, see above, under ``jax.jit``).

    Raises:
      ValueError: (eagerly) a bad ``key``, ``q`` not a 1-d probability vector, ``n`` not a
        positive int or above the number of tokens with ``q > 0``.

    >>> import jax, jax.numpy as jnp
    >>> d = without_replacement_sample(jax.random.key(0), jnp.array([0.5, 0.0, 0.5]), 2)
    >>> sorted(d.tolist())
    [0, 2]

    References:
      Kool, van Hoof, Welling. Stochastic Beams and Where to Find Them: The Gumbel-Top-k
      Trick for Sampling Sequences Without Replacement, ICML 2019 (arXiv 1903.06059).
    """
    key = _v.check_key(key)
    q = _c.sampler_law(q)
    n = _v.check_n(n, V=int(q.shape[-1]), replacement=False, support=_v.support_size(q))
    return _sample_core(key, q, n, not _v.is_concrete(q))


@functools.partial(jax.jit, static_argnames=("n", "check"))
def _sample_core(key, q, n, check):
    dt = jnp.result_type(q.dtype, jnp.float32)
    tok, valid = _children_core(key, jnp.log(q.astype(dt)), n)
    return jnp.where(valid & _c.law_ok(q), tok, -1).astype(jnp.int32) if check else tok


def without_replacement_law(q, n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact law of ``n`` ordered draws without replacement from ``q`` (host side, float64):
    the Plackett-Luce law, also the law of Gumbel-top-``n``
    (:func:`spectheory.sampling.gumbel_top_k`).

    .. math::
        Q(x_1, \dots, x_n) = \prod_{j=1}^{n} \frac{q(x_j)}{1 - \sum_{i<j} q(x_i)}
        \quad (x_i \text{ distinct}).

    Each denominator is computed as the mass of the tokens not yet drawn (a sum over them, not
    one minus a running sum), which keeps the law accurate when a few tokens hold almost all
    the mass.

    Args:
      q: draft law, float[V] (one probability vector; no batches), concrete.
      n: number of drafts, at most the number of tokens with ``q > 0``.

    Returns:
      ``(tuples int64[M, n], probs float64[M])`` over the ``M = S!/(S-n)!`` ordered tuples of
      distinct tokens of the support (size ``S``) of ``q``, in lexicographic order of the
      support's token ids.

    Raises:
      ValueError: if ``q`` is not a 1-d probability vector, ``n`` is not a positive int or
        exceeds the support of ``q``, or ``M`` exceeds :data:`spectheory.drafts.MAX_LAW_SIZE`.
      TypeError: if ``q`` is traced (the law is enumerated on the host).

    >>> t, w = without_replacement_law([0.5, 0.3, 0.2], 2)
    >>> len(t), round(float(w.sum()), 12), t[0].tolist(), round(float(w[0]), 12)
    (6, 1.0, [0, 1], 0.3)

    References:
      Plackett, The analysis of permutations (1975); Luce, Individual Choice Behavior (1959);
      Kool et al., ICML 2019 (arXiv 1903.06059), Sec. 2.
    """
    q = _c.host_law(q)
    support = np.flatnonzero(q > 0)
    n = _v.check_n(n, V=q.shape[-1], replacement=False, support=len(support))
    count = 1
    for j in range(n):
        count *= len(support) - j
    if count > MAX_LAW_SIZE:
        raise ValueError(
            f"the draft law has {count} tuples, above the enumeration limit {MAX_LAW_SIZE}; "
            "use a smaller vocabulary or fewer drafts"
        )
    # level by level over the distinct prefixes (drawn tokens as positions in the support):
    # the mass left before a draw is summed over the remaining tokens, not 1 - (mass drawn),
    # so the law stays accurate when a few tokens hold almost all the mass
    qs = q[support]
    prefix = np.zeros((1, 0), np.int64)
    remaining = np.ones((1, len(support)), bool)
    probs = np.ones(1)
    for j in range(n):
        left = np.where(remaining, qs[None, :], 0.0).sum(axis=1)
        rows, cols = np.nonzero(remaining)  # row-major: prefixes in order, then the next token
        probs = probs[rows] * qs[cols] / left[rows]
        prefix = np.concatenate([prefix[rows], cols[:, None]], axis=1)
        if j + 1 < n:
            remaining = remaining[rows]
            remaining[np.arange(len(rows)), cols] = False
    tuples = support[prefix].astype(np.int64).reshape(-1, n)
    return tuples, probs


WITHOUT_REPLACEMENT = DraftScheme(
    name="without_replacement",
    sample=without_replacement_sample,
    law=without_replacement_law,
    children=without_replacement_children,
    family="without_replacement",
    min_n=1,
    max_n=lambda V: V,
    replacement=False,
)
"""Drafts drawn without replacement (Gumbel-top-k): recursive speculative decoding (RSD)."""
