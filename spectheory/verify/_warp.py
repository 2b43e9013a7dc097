"""Logit warping (temperature, top-k, top-p) applied identically to target and draft."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _validation as _v


def check_warp(temperature=1.0, top_k: Optional[int] = None, top_p: Optional[float] = None):
    """Validate static warping parameters; returns ``(temperature, top_k, top_p)``."""
    try:
        t = float(temperature)
    except TypeError:
        raise ValueError("temperature: must be a Python float (static), not a traced value") from None
    if not np.isfinite(t) or t < 0:
        raise ValueError(f"temperature: must be finite and >= 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k: must be a positive int or None, got {top_k!r}")
    if top_p is not None:
        top_p = float(top_p)
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p: must lie in (0, 1], got {top_p!r}")
    return t, (None if top_k is None else int(top_k)), top_p


def shift_scale(x, m, t: float) -> jax.Array:
    r""":math:`(x - m) / T` for logits ``x`` and their row maximum ``m`` (broadcast), ``T`` a
    static float > 0: the maximum maps to exactly 0 and the others to differences formed at
    the logits' scale before the division, so a tiny ``T`` neither forms huge logits (whose
    softmax is NaN under jit) nor cancels two of them, nor divides 0 by a ``T`` that rounds
    to 0; the same numbers eagerly and under jit."""
    d = x - m
    if t == 1.0:
        return d
    return jnp.where(d == 0, 0, d / jnp.asarray(t, d.dtype)).astype(d.dtype)


def warp_logits(logits, temperature: float = 1.0, top_k: Optional[int] = None,
                top_p: Optional[float] = None) -> jax.Array:
    r"""The sampling law's logits after temperature, top-k and top-p, in that order.

    Tokens removed by top-k or top-p get logit ``-inf``; the law is
    ``softmax(warp_logits(...))``. For ``temperature`` not 1 the logits are returned shifted by
    their row maximum, :math:`(x - \max x) / T` (the same law as :math:`x / T`, and finite at
    every :math:`T > 0`, so a tiny :math:`T` gives the same law eagerly and under ``jax.jit``). ``temperature = 0`` means greedy: only the first argmax keeps
    a finite logit (0). Speculative decoding is lossless for the warped target law only if the
    drafts are drawn from the draft's law warped *the same way* and verified against those same
    two warped laws; a verifier fed unwarped draft probabilities while the drafts came from a
    warped law (or the reverse) is not lossless.

    * top-k keeps the ``k`` largest logits (ties at the k-th value are all kept);
    * top-p keeps the smallest prefix of tokens sorted by probability whose mass reaches
      ``top_p`` (the most likely token is always kept).

    A NaN (or ``+inf``) logit is never warped away: it becomes NaN and the row's law stays
    NaN (under ``jax.jit``, where the front door cannot raise, invalid logits must not become a
    plausible law); eagerly it raises.

    Args:
      logits: float[..., V].
      temperature: static float >= 0.
      top_k: static positive int or ``None``.
      top_p: static float in (0, 1] or ``None``.

    Returns:
      float[..., V] logits (at least float32).

    Raises:
      ValueError: naming ``logits`` (not floating, NaN or ``+inf``, a row all ``-inf``; eager
        calls), ``temperature``, ``top_k`` or ``top_p``.

    >>> import jax.numpy as jnp
    >>> warp_logits(jnp.log(jnp.array([0.5, 0.3, 0.2])), top_k=2).tolist()[2]
    -inf

    References:
      Holtzman et al., The Curious Case of Neural Text Degeneration, ICLR 2020 (top-p);
      Fan et al., Hierarchical Neural Story Generation, ACL 2018 (top-k).
    """
    t, top_k, top_p = check_warp(temperature, top_k, top_p)
    x = _v.as_logits(logits, "logits")
    x = x.astype(jnp.result_type(x.dtype, jnp.float32))
    x = jnp.where(x == jnp.inf, jnp.nan, x)  # +inf is no logit (under jit): NaN in, NaN out
    V = x.shape[-1]
    if t == 0.0:
        greedy = jnp.where(jax.nn.one_hot(jnp.argmax(x, axis=-1), V, dtype=bool), 0.0, -jnp.inf)
        return jnp.where(jnp.any(jnp.isnan(x), axis=-1, keepdims=True), jnp.nan, greedy).astype(x.dtype)
    if t != 1.0:
        x = shift_scale(x, jnp.max(x, axis=-1, keepdims=True), t)  # the same law as x / T
    if top_k is not None and top_k < V:
        kth = jax.lax.top_k(x, top_k)[0][..., -1:]
        x = jnp.where(x < kth, -jnp.inf, x)  # (a NaN is kept: NaN in, NaN out)
    if top_p is not None and top_p < 1.0:
        order = jnp.argsort(-x, axis=-1)
        sorted_x = jnp.take_along_axis(x, order, axis=-1)
        probs = jax.nn.softmax(sorted_x, axis=-1)
        mass_before = jnp.cumsum(probs, axis=-1) - probs
        keep_sorted = ~(mass_before >= top_p)
        keep = jnp.put_along_axis(jnp.zeros_like(keep_sorted), order, keep_sorted, axis=-1, inplace=False)
        x = jnp.where(keep, x, -jnp.inf)
    return x
