"""Drafts without replacement: n sequential draws from q, each excluding the earlier ones."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _validation as _v
from spectheory._registry import DraftScheme
from spectheory.drafts._iid import MAX_LAW_SIZE


def without_replacement_sample(key: jax.Array, q: jax.Array, n: int) -> jax.Array:
    r"""Draw ``n`` distinct drafts from ``q`` by Gumbel-top-k.

    With :math:`g_x` i.i.d. Gumbel(0, 1), the indices of the ``n`` largest
    :math:`\log q(x) + g_x`, in decreasing order, have exactly the law of ``n`` sequential
    draws without replacement:

    .. math::
        Q(x_1, \dots, x_n) = \prod_{j=1}^{n} \frac{q(x_j)}{1 - \sum_{i<j} q(x_i)}.

    Args:
      key: a ``jax.random`` key.
      q: draft law, float[V]; needs at least ``n`` tokens of positive mass.
      n: number of drafts (static), ``n <= #{x : q(x) > 0}``.

    Returns:
      int32[n] distinct token ids, in draw order.

    Raises:
      ValueError: (eagerly) if ``n`` exceeds the number of tokens with ``q > 0``.

    >>> import jax, jax.numpy as jnp
    >>> d = without_replacement_sample(jax.random.key(0), jnp.array([0.5, 0.0, 0.5]), 2)
    >>> sorted(d.tolist())
    [0, 2]

    References:
      Kool, van Hoof, Welling. Stochastic Beams and Where to Find Them: The Gumbel-Top-k
      Trick for Sampling Sequences Without Replacement, ICML 2019 (arXiv 1903.06059).
    """
    q = _v.as_probs(q, "q")
    n = _v.check_n(n, V=int(q.shape[-1]), replacement=False, support=_v.support_size(q))
    return _sample_core(key, q, n)


@functools.partial(jax.jit, static_argnames="n")
def _sample_core(key, q, n):
    dt = jnp.result_type(q.dtype, jnp.float32)
    g = jax.random.gumbel(key, q.shape, dt) + jnp.log(q.astype(dt))
    return jax.lax.top_k(g, n)[1].astype(jnp.int32)


def without_replacement_law(q, n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact law of ``n`` ordered draws without replacement from ``q`` (host side, float64).

    .. math::
        Q(x_1, \dots, x_n) = \prod_{j=1}^{n} \frac{q(x_j)}{1 - \sum_{i<j} q(x_i)}
        \quad (x_i \text{ distinct}).

    Args:
      q: draft law, float[V].
      n: number of drafts, at most the number of tokens with ``q > 0``.

    Returns:
      ``(tuples int64[M, n], probs float64[M])`` over the ``M = S!/(S-n)!`` ordered tuples of
      distinct tokens of the support (size ``S``) of ``q``.

    Raises:
      ValueError: if ``n`` exceeds the support of ``q`` or ``M`` exceeds
        :data:`spectheory.drafts.MAX_LAW_SIZE`.
    """
    q = np.asarray(q, dtype=np.float64)
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
    tuples = np.array(list(itertools.permutations(support, n)), dtype=np.int64).reshape(-1, n)
    qt = q[tuples]
    before = np.concatenate([np.zeros((len(tuples), 1)), np.cumsum(qt, axis=1)[:, :-1]], axis=1)
    probs = np.prod(qt / (1.0 - before), axis=1)
    return tuples, probs


WITHOUT_REPLACEMENT = DraftScheme(
    name="without_replacement",
    sample=without_replacement_sample,
    law=without_replacement_law,
    min_n=1,
    max_n=lambda V: V,
    replacement=False,
)
"""Drafts drawn without replacement (Gumbel-top-k): recursive speculative decoding (RSD)."""
