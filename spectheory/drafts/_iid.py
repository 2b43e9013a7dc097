"""I.i.d. drafts: the n drafts are independent draws from q."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from spectheory._registry import DraftScheme

#: Largest number of draft tuples :func:`enumerate_law` will list.
MAX_LAW_SIZE = 2_000_000


def iid_sample(key: jax.Array, q: jax.Array, n: int) -> jax.Array:
    r"""Draw ``n`` i.i.d. drafts from ``q``.

    .. math:: x_1, \dots, x_n \overset{iid}{\sim} q

    Args:
      key: a ``jax.random`` key.
      q: draft law, float[V].
      n: number of drafts (static).

    Returns:
      int32[n] token ids.

    >>> import jax, jax.numpy as jnp
    >>> iid_sample(jax.random.key(0), jnp.array([0.0, 1.0]), 3).tolist()
    [1, 1, 1]
    """
    logq = jnp.log(jnp.asarray(q))
    return jax.random.categorical(key, logq, shape=(n,)).astype(jnp.int32)


def _check_law_size(support: int, n: int) -> None:
    if support**n > MAX_LAW_SIZE:
        raise ValueError(
            f"the draft law has {support}**{n} tuples, above the enumeration limit {MAX_LAW_SIZE}; "
            "use a smaller vocabulary or fewer drafts"
        )


def iid_law(q, n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact joint law of ``n`` i.i.d. drafts from ``q`` (host side, float64).

    .. math:: Q(x_1, \dots, x_n) = \prod_j q(x_j)

    Args:
      q: draft law, float[V].
      n: number of drafts.

    Returns:
      ``(tuples int64[M, n], probs float64[M])`` over the tuples of positive probability,
      ``M = |supp q|^n``.

    Raises:
      ValueError: if ``M`` exceeds :data:`MAX_LAW_SIZE`.
    """
    q = np.asarray(q, dtype=np.float64)
    support = np.flatnonzero(q > 0)
    _check_law_size(len(support), n)
    tuples = np.array(list(itertools.product(support, repeat=n)), dtype=np.int64).reshape(-1, n)
    probs = np.prod(q[tuples], axis=1)
    return tuples, probs


IID = DraftScheme(name="iid", sample=iid_sample, law=iid_law, min_n=1, replacement=True)
"""The i.i.d. draft scheme (SpecInfer, SpecTr, single-draft speculative sampling)."""
