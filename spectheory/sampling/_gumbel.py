"""Gumbel-top-k: sampling without replacement and its Plackett-Luce law.

The enumerated Plackett-Luce law of ``k`` ordered draws is the law of the without-replacement
draft scheme, :func:`spectheory.drafts.without_replacement_law`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _validation as _v
from spectheory.sampling._traced import any_traced, flag_where, logits_ok, nan_where


def _check_k(k, V: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k: expected a positive Python int (static), got {k!r}")
    k = int(k)
    if not 1 <= k <= V:
        raise ValueError(f"k: expected 1 <= k <= V = {V}, got {k}")
    return k


def _check_support(logits, k: int) -> None:
    if _v.is_concrete(logits):
        support = np.sum(np.asarray(logits) > -np.inf, axis=-1)
        if np.any(support < k):
            raise ValueError(
                f"k={k} is too large for these logits (sampling without replacement): a row has only "
                f"{int(np.min(support))} tokens of positive probability")


def gumbel_top_k_with_gumbels(gumbels, logits, k: int) -> jax.Array:
    r"""Gumbel-top-k with explicit noise: the ``k`` largest of ``logits + gumbels``, in order.

    .. math:: (i_1, \dots, i_k) = \operatorname{arg\,top}_k \big(\ell_i + g_i\big),
        \qquad g_i \overset{iid}{\sim} \mathrm{Gumbel}(0, 1).

    Args:
      gumbels: float[..., V] i.i.d. standard Gumbel noise (e.g. ``jax.random.gumbel``).
      logits: float[..., V] unnormalised log-probabilities; ``-inf`` marks tokens of zero
        probability. Leading axes broadcast against ``gumbels``.
      k: static number of draws, ``1 <= k <= V``; at most the number of finite logits (checked
        on concrete inputs).

    Returns:
      int32[..., k], distinct token ids in decreasing order of perturbed logit. Under
      ``jit``/``vmap`` a draw that falls on a token of zero probability (fewer than ``k``
      finite logits) is the flag ``-1``, and so is every draw of a row with NaN or ``+inf``
      logits or non-finite noise.

    Raises:
      ValueError: (eager) NaN or ``+inf`` logits, an all ``-inf`` row, non-finite or
        non-floating ``gumbels``, a ``k`` outside ``[1, V]`` or above the support.

    >>> import jax.numpy as jnp
    >>> gumbel_top_k_with_gumbels(jnp.zeros(4), jnp.log(jnp.array([0.1, 0.4, 0.2, 0.3])), 2).tolist()
    [1, 3]

    References:
      Kool, van Hoof, Welling. Stochastic Beams and Where to Find Them, ICML 2019
      (arXiv 1903.06059), Sec. 2; Vieira, "Gumbel-max trick and weighted reservoir sampling"
      (2014); Yellott, The relationship between Luce's choice axiom, Thurstone's theory of
      comparative judgment, and the double exponential distribution (1977).
    """
    logits = _v.as_logits(logits, "logits")
    if logits.ndim < 1:
        raise ValueError("logits: expected at least one axis")
    k = _check_k(k, logits.shape[-1])
    _check_support(logits, k)
    gumbels = jnp.asarray(gumbels) if _v.is_concrete(gumbels) else gumbels
    if not jnp.issubdtype(gumbels.dtype, jnp.floating):
        raise ValueError(f"gumbels: expected floating noise, got dtype {gumbels.dtype}")
    if gumbels.ndim < 1 or gumbels.shape[-1] != logits.shape[-1]:
        raise ValueError(f"gumbels: last axis of shape {tuple(gumbels.shape)} != V = {logits.shape[-1]}")
    try:
        jnp.broadcast_shapes(gumbels.shape, logits.shape)
    except ValueError:
        raise ValueError(f"gumbels: shape {tuple(gumbels.shape)} does not broadcast against logits "
                         f"{tuple(logits.shape)}") from None
    if _v.is_concrete(gumbels) and not np.all(np.isfinite(np.asarray(gumbels))):
        raise ValueError("gumbels: contains NaN or inf")
    dtype = jnp.result_type(logits.dtype, gumbels.dtype, jnp.float32)
    vals, idx = jax.lax.top_k(logits.astype(dtype) + gumbels.astype(dtype), k)
    idx = jnp.where(vals > -jnp.inf, idx, -1).astype(jnp.int32)
    if any_traced(logits, gumbels):
        ok = logits_ok(logits) & jnp.all(jnp.abs(gumbels) < jnp.inf, -1)
        idx = flag_where(ok, idx)
    return idx


def gumbel_top_k(key, logits, k: int) -> jax.Array:
    r"""Draw ``k`` tokens without replacement from ``softmax(logits)``, in draw order.

    Same as :func:`gumbel_top_k_with_gumbels` with
    ``gumbels = jax.random.gumbel(key, logits.shape, dtype)``. The ordered result has the
    Plackett-Luce law (:func:`plackett_luce_log_prob`; enumerated by
    :func:`spectheory.drafts.without_replacement_law`):

    .. math:: P(i_1, \dots, i_k) = \prod_{j=1}^{k} \frac{w_{i_j}}{1 - \sum_{l<j} w_{i_l}},
        \qquad w = \mathrm{softmax}(\ell).

    Args:
      key: a ``jax.random`` key.
      logits: float[..., V].
      k: static, ``1 <= k <=`` number of finite logits.

    Returns:
      int32[..., k] (the flag ``-1`` under ``jit``/``vmap`` as in
      :func:`gumbel_top_k_with_gumbels`).

    Raises:
      ValueError: a bad ``key``, or as :func:`gumbel_top_k_with_gumbels`.

    >>> import jax, jax.numpy as jnp
    >>> x = gumbel_top_k(jax.random.key(0), jnp.log(jnp.array([0.5, 0.5, 0.0])), 2)
    >>> sorted(x.tolist())
    [0, 1]

    References:
      Kool et al., ICML 2019 (arXiv 1903.06059); Vieira (2014).
    """
    key = _v.check_key(key)
    logits = _v.as_logits(logits, "logits")
    dtype = jnp.result_type(logits, jnp.float32)
    g = jax.random.gumbel(key, jnp.shape(logits), dtype)
    return gumbel_top_k_with_gumbels(g, logits, k)


def plackett_luce_log_prob(logits, indices) -> jax.Array:
    r"""Log-probability of an ordered tuple drawn without replacement (Plackett-Luce).

    .. math:: \log P(i_1..i_k) = \sum_{j=1}^{k} \Big[\log w_{i_j}
        - \log\Big(1 - \sum_{l<j} w_{i_l}\Big)\Big], \qquad w = \mathrm{softmax}(\ell).

    Args:
      logits: float[V].
      indices: int[k], distinct.

    Returns:
      float scalar (``-inf`` for tuples of probability zero); NaN under ``jit``/``vmap`` for
      invalid logits or ids out of range or repeated.

    Raises:
      ValueError: (eager) invalid logits (as :func:`gumbel_top_k_with_gumbels`), ids not
        integers in ``[0, V)``, repeated ids, or no ids.

    >>> import jax.numpy as jnp
    >>> round(float(jnp.exp(plackett_luce_log_prob(jnp.log(jnp.array([0.5, 0.3, 0.2])), jnp.array([1, 2])))), 4)
    0.0857

    References:
      Plackett, The analysis of permutations (1975); Luce, Individual Choice Behavior (1959).
    """
    logits = _v.as_logits(logits, "logits", ndim=1)
    V = logits.shape[-1]
    indices = _v.as_tokens(indices, "indices", V)
    k = indices.shape[0]
    if k == 0:
        raise ValueError("indices: expected at least one index")
    if _v.is_concrete(indices) and np.unique(np.asarray(indices)).size != k:
        raise ValueError(f"indices: expected distinct ids (drawn without replacement), got {np.asarray(indices).tolist()}")
    logw = jax.nn.log_softmax(logits.astype(jnp.result_type(logits, jnp.float32)))
    w = jnp.exp(logw)
    sel = logw[indices]
    used = jnp.concatenate([jnp.zeros((1,), w.dtype), jnp.cumsum(w[indices])[:-1]])
    rest = jnp.maximum(1 - used, 0)
    out = jnp.sum(sel - jnp.log(jnp.where(rest > 0, rest, 1)))
    if any_traced(logits, indices):
        distinct = jnp.all(jnp.sum(indices[:, None] == indices[None, :], 1) == 1)
        in_range = jnp.all((indices >= 0) & (indices < V))
        out = nan_where(logits_ok(logits) & distinct & in_range, out)
    return out
