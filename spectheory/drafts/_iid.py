"""I.i.d. drafts: the n drafts are independent draws from q."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _validation as _v
from spectheory._registry import DraftScheme
from spectheory.drafts import _checks as _c

#: Largest number of draft tuples the enumerated draft laws (``*_law``) will list.
MAX_LAW_SIZE = 2_000_000


def iid_children(key: jax.Array, logq: jax.Array, b: int) -> tuple[jax.Array, jax.Array]:
    r"""Draw ``b`` i.i.d. children from a log draft law: the tree form of :func:`iid_sample`.

    .. math:: c_1, \dots, c_b \overset{iid}{\sim} q = \exp(\log q)

    Every child is valid. Eagerly the arguments are checked; under ``jax.jit`` (traced
    ``logq``) an invalid ``logq`` (NaN, ``+inf``, no finite entry, or ``exp(logq)`` not
    summing to one within the eager tolerance) gives the flag: every slot ``-1`` and invalid.
    One node per call (``jax.vmap`` for many).

    Args:
      key: a ``jax.random`` key (a single key).
      logq: float[V] log-probabilities (``-inf`` for tokens of zero mass).
      b: number of children (static), a positive int.

    Returns:
      ``(tokens int32[b], valid bool[b])`` with ``valid`` all true (all false with tokens
      ``-1`` for an invalid traced ``logq``).

    Raises:
      ValueError: (eagerly) a bad ``key``, ``b``, or ``logq`` (values checked when concrete).

    >>> import jax, jax.numpy as jnp
    >>> tok, ok = iid_children(jax.random.key(0), jnp.log(jnp.array([0.0, 1.0])), 3)
    >>> tok.tolist(), ok.tolist()
    ([1, 1, 1], [True, True, True])

    References:
      Miao et al., SpecInfer, ASPLOS 2024 (arXiv 2305.09781) (i.i.d. children of a token tree).
    """
    return _c.checked_children(_children_core, key, logq, b)


def _children_core(key, logq, b):
    tok = jax.random.categorical(key, logq, shape=(b,)).astype(jnp.int32)
    return tok, jnp.ones((b,), bool)


def iid_sample(key: jax.Array, q: jax.Array, n: int) -> jax.Array:
    r"""Draw ``n`` i.i.d. drafts from ``q``.

    .. math:: x_1, \dots, x_n \overset{iid}{\sim} q

    The same draws as :func:`iid_children` on ``log q`` for the same key. One draft law per
    call: a batched (2-d) ``q`` is refused (``jax.vmap`` over rows instead). Under ``jax.jit``
    an invalid ``q`` (NaN/inf, a negative entry, a sum off by more than the eager tolerance)
    gives the flag: every draft ``-1``.

    Args:
      key: a ``jax.random`` key (a single key).
      q: draft law, float[V].
      n: number of drafts (static).

    Returns:
      int32[n] token ids (all ``-1`` for an invalid traced ``q``).

    Raises:
      ValueError: (eagerly) a bad ``key``, ``q`` not a 1-d probability vector, or ``n`` not
        a positive int (shapes are also checked under ``jax.jit``).

    >>> import jax, jax.numpy as jnp
    >>> iid_sample(jax.random.key(0), jnp.array([0.0, 1.0]), 3).tolist()
    [1, 1, 1]

    References:
      Leviathan, Kalman, Matias 2023 (arXiv 2211.17192); Miao et al., SpecInfer
      (arXiv 2305.09781).
    """
    key = _v.check_key(key)
    q = _c.sampler_law(q)
    n = _v.check_n(n)
    return _sample_core(key, q, n, not _v.is_concrete(q))


@functools.partial(jax.jit, static_argnames=("n", "check"))
def _sample_core(key, q, n, check):
    tok = _children_core(key, jnp.log(q), n)[0]
    return jnp.where(_c.law_ok(q), tok, -1).astype(jnp.int32) if check else tok


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
      q: draft law, float[V] (one law; no batches), concrete.
      n: number of drafts.

    Returns:
      ``(tuples int64[M, n], probs float64[M])`` over the tuples of positive probability,
      ``M = |supp q|^n``.

    Raises:
      ValueError: if ``q`` is not a 1-d probability vector, ``n`` is not a positive int, or
        ``M`` exceeds :data:`MAX_LAW_SIZE`.
      TypeError: if ``q`` is traced (the law is enumerated on the host).

    >>> t, w = iid_law([0.25, 0.75], 2)
    >>> t.tolist(), w.tolist()
    ([[0, 0], [0, 1], [1, 0], [1, 1]], [0.0625, 0.1875, 0.1875, 0.5625])

    References:
      Miao et al., SpecInfer (arXiv 2305.09781); Sun et al., SpecTr (arXiv 2310.15141).
    """
    q = _c.host_law(q)
    n = _v.check_n(n)
    support = np.flatnonzero(q > 0)
    _check_law_size(len(support), n)
    tuples = np.array(list(itertools.product(support, repeat=n)), dtype=np.int64).reshape(-1, n)
    probs = np.prod(q[tuples], axis=1)
    return tuples, probs


IID = DraftScheme(name="iid", sample=iid_sample, law=iid_law, children=iid_children, family="iid",
                  min_n=1, replacement=True)
"""The i.i.d. draft scheme (SpecInfer, SpecTr, single-draft speculative sampling)."""
