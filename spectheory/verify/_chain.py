r"""Chain (token-by-token) verification of gamma drafted tokens.

A draft chain :math:`x_1..x_\gamma` with per-position draft laws :math:`q_i` is checked against
the target laws :math:`p_1..p_{\gamma+1}`: accept :math:`x_1, x_2, \dots` while each passes its
own single-draft test, with probability :math:`\min(1, p_i(x_i)/q_i(x_i))`; at the first
rejection :math:`i` emit :math:`y \sim \mathrm{norm}((p_i - q_i)_+)`, and if all pass emit a
bonus token from :math:`p_{\gamma+1}`: 1 to :math:`\gamma + 1` tokens per call. With a per-token
acceptance :math:`\alpha` the expected number of tokens per call is
:math:`(1 - \alpha^{\gamma+1}) / (1 - \alpha)`.

:data:`TOKEN` is this chain verifier as a :class:`~spectheory.ChainVerifier` value
(:func:`chain`, :func:`chain_with_uniforms`, :func:`chain_kernel`, ``gamma + 1`` uniforms);
:data:`spectheory.verify.BLOCK` is block verification.

>>> import jax, jax.numpy as jnp
>>> p = jnp.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]])
>>> res = TOKEN.verify(jax.random.key(0), p, p[:2], jnp.array([1, 0]))  # q == p: both accepted
>>> int(res.num_accepted), TOKEN.num_uniforms(2)
(2, 3)

References:
  Leviathan, Kalman, Matias 2023 (arXiv 2211.17192), Algorithm 1; Chen et al. 2023
  (arXiv 2302.01318).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from spectheory import _core
from spectheory import _validation as _v
from spectheory._registry import ChainVerifier
from spectheory.verify._warp import check_warp, shift_scale, warp_logits


class ChainResult(NamedTuple):
    """Outcome of verifying one draft chain.

    Attributes:
      tokens: the emitted tokens, the accepted drafts followed by one corrected or bonus
        token, padded with -1. Under ``jax.jit`` (no value checks) an invalid law makes every
        token -1 (``tokens[0] == -1`` is the flag); a draft id outside ``[0, V)`` is never
        accepted.  # shape=(gamma+1,), dtype=int32
      num_accepted: number of accepted draft tokens ``k`` in ``0..gamma``; the call emits
        ``k + 1`` tokens (0 with the flag).  # shape=(), dtype=int32
    """

    tokens: jax.Array
    num_accepted: jax.Array


def _check_chain(p, q, drafts):
    p = _v.as_probs(p, "p", ndim=2)
    q = _v.as_probs(q, "q", ndim=2)
    V = _v.same_vocab(p, q)
    g = q.shape[0]
    if p.shape[0] != g + 1:
        raise ValueError(f"p: expected gamma+1 = {g + 1} rows for q with gamma = {g} rows, got {p.shape[0]}")
    drafts = _v.as_tokens(drafts, "drafts", V, length=g)
    dtype = jnp.result_type(p.dtype, q.dtype)
    return p.astype(dtype), q.astype(dtype), drafts, g, V


def _emit(k, y, drafts, g) -> ChainResult:
    """The accepted drafts ``drafts[:k]``, then ``y``, padded with -1; when ``y`` is the flag
    -1 (its law has no positive finite mass: invalid input) every token is -1 and
    ``num_accepted`` is 0."""
    pos = jnp.arange(g + 1)
    base = jnp.concatenate([drafts.astype(jnp.int32), jnp.full((1,), -1, jnp.int32)])
    tokens = jnp.where(pos < k, base, -1)
    tokens = jnp.where(pos == k, y, tokens)
    bad = y < 0
    return ChainResult(jnp.where(bad, _core.INVALID, tokens).astype(jnp.int32),
                       jnp.where(bad, 0, k).astype(jnp.int32))


def chain_with_uniforms(uniforms, p, q, drafts) -> ChainResult:
    r"""Token verification of a draft chain with explicit noise.

    Draft :math:`x_i` is accepted iff :math:`u_i\,q_i(x_i) < p_i(x_i)` (probability
    :math:`\min(1, p_i(x_i)/q_i(x_i))`), scanning :math:`i = 1..\gamma` until the first
    rejection :math:`k+1`. Then one more token is drawn with :math:`u_\gamma` by inverse CDF:

    .. math::
        y \sim \mathrm{norm}\big((p_{k+1} - q_{k+1})_+\big) \text{ if } k < \gamma,
        \qquad y \sim p_{\gamma+1} \text{ if } k = \gamma.

    Args:
      uniforms: float[gamma+1] i.i.d. U[0, 1).
      p: target conditionals, float[gamma+1, V]; row ``i`` is the target law after the
        prefix and the first ``i`` drafts.
      q: draft conditionals the drafts were drawn from, float[gamma, V].
      drafts: int[gamma].

    Returns:
      :class:`ChainResult`.

    Batch with ``jax.vmap(chain_with_uniforms)``.

    >>> import jax.numpy as jnp  # q == p: both drafts pass, the bonus draw with 0.95 gives token 1
    >>> p = jnp.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]])
    >>> r = chain_with_uniforms(jnp.array([0.3, 0.7, 0.95]), p, p[:2], jnp.array([1, 0]))
    >>> r.tokens.tolist(), int(r.num_accepted)
    ([1, 0, 1], 2)

    References:
      Leviathan et al. 2023 (arXiv 2211.17192), Algorithm 1; Chen et al. 2023
      (arXiv 2302.01318).
    """
    p, q, drafts, g, V = _check_chain(p, q, drafts)
    u = _v.check_uniforms(uniforms, g + 1).astype(p.dtype)
    ok = _core.accepts(u[:g], _core.take_rows(p[:g], drafts), _core.take_rows(q, drafts))
    k = jnp.sum(jnp.cumprod(ok.astype(jnp.int32)))
    q_pad = jnp.concatenate([q, jnp.zeros((1, V), q.dtype)])
    y = _core.sample_index(u[g], _core.residual_weights(p[k], q_pad[k]))
    return _emit(k, y, drafts, g)


def chain(key, p, q, drafts) -> ChainResult:
    """Token verification of a draft chain, drawing its ``gamma + 1`` uniforms from ``key``.

    Same as :func:`chain_with_uniforms` with ``jax.random.uniform(key, (gamma + 1,))``.

    Args:
      key: a ``jax.random`` key.
      p: float[gamma+1, V] target conditionals.
      q: float[gamma, V] draft conditionals.
      drafts: int[gamma].

    Returns:
      :class:`ChainResult`: ``tokens`` int32[gamma+1] (the accepted drafts, then one corrected
      or bonus token, padded with -1) and ``num_accepted`` int32[] in ``0..gamma``.

    Raises:
      ValueError: on concrete inputs, as :func:`chain_with_uniforms`: ``p``/``q`` not
        probability rows of the same vocabulary ``V``, ``p`` without ``gamma + 1`` rows, or
        ``drafts`` not ``gamma`` ids in ``[0, V)``.

    >>> import jax, jax.numpy as jnp
    >>> p = jnp.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]])
    >>> res = chain(jax.random.key(0), p, p[:2], jnp.array([1, 0]))
    >>> res.tokens.shape, int(res.num_accepted)
    ((3,), 2)
    """
    dtype = _core.float_dtype(p, q)
    g = jnp.shape(q)[0]
    return chain_with_uniforms(jax.random.uniform(key, (g + 1,), dtype), p, q, drafts)


def chain_kernel(p, q, drafts) -> jax.Array:
    r"""Exact joint law of (number accepted, next token) for token verification.

    With :math:`a_i = \min(1, p_i(x_i)/q_i(x_i))` and :math:`s_k = \prod_{i<k} a_i`,

    .. math::
        K[k, y] = s_k (1 - a_k)\, r_k(y) \ (k < \gamma), \qquad K[\gamma, y] = s_\gamma\, p_{\gamma+1}(y),

    where :math:`r_k` is the normalised residual :math:`(p_k - q_k)_+`.

    Args:
      p: float[gamma+1, V]; q: float[gamma, V]; drafts: int[gamma].

    Returns:
      float[gamma+1, V] summing to one.

    >>> import jax.numpy as jnp  # a_1 = 0.5: rejected -> residual (0, 0.5); accepted -> bonus p_2
    >>> chain_kernel(jnp.array([[0.5, 0.5], [1.0, 0.0]]), jnp.array([[1.0, 0.0]]), jnp.array([0])).tolist()
    [[0.0, 0.5], [0.5, 0.0]]

    References:
      Leviathan et al. 2023 (arXiv 2211.17192), Appendix A.
    """
    p, q, drafts, g, V = _check_chain(p, q, drafts)
    a = _core.accept_prob(_core.take_rows(p[:g], drafts), _core.take_rows(q, drafts))
    s = jnp.concatenate([jnp.ones((1,), p.dtype), jnp.cumprod(a)])
    r = _core.normalize(_core.residual_weights(p[:g], q))
    rows = (s[:g] * (1 - a))[:, None] * r
    return jnp.concatenate([rows, s[g] * p[g:]], axis=0)


def chain_from_logits_with_uniforms(uniforms, target_logits, draft_logits, drafts, temperature=1.0,
                                    top_k=None, top_p=None) -> ChainResult:
    r"""Token verification from unnormalised logits, with explicit noise.

    The laws are :math:`p_i = \mathrm{softmax}(\ell^{t}_i / T)` and
    :math:`q_i = \mathrm{softmax}(\ell^{d}_i / T)` with the same temperature :math:`T` on both
    sides; ``T = 0`` means greedy (point masses at the argmax). With ``top_k``/``top_p`` both
    laws are warped identically by :func:`warp_logits` (the drafts must have been drawn from
    the warped draft law). Without them only the work the rule needs is
    done: a log-normaliser per row, a gather per draft, and the one residual (or bonus) row;
    acceptance is tested in log space, :math:`\log u_i + \log q_i(x_i) < \log p_i(x_i)`.
    Decisions equal :func:`chain_with_uniforms` on the softmaxed laws (up to rounding).

    Args:
      uniforms: float[gamma+1].
      target_logits: float[gamma+1, V].
      draft_logits: float[gamma, V].
      drafts: int[gamma].
      temperature: static Python float >= 0.
      top_k: static int or ``None``; top_p: static float in (0, 1] or ``None``.

    Returns:
      :class:`ChainResult`.
    """
    t, top_k, top_p = check_warp(temperature, top_k, top_p)
    tl = _v.as_logits(target_logits, "target_logits", ndim=2)
    dl = _v.as_logits(draft_logits, "draft_logits", ndim=2)
    V = _v.same_vocab(tl, dl, "target_logits", "draft_logits")
    g = dl.shape[0]
    if tl.shape[0] != g + 1:
        raise ValueError(f"target_logits: expected gamma+1 = {g + 1} rows, got {tl.shape[0]}")
    drafts = _v.as_tokens(drafts, "drafts", V, length=g)
    if t == 0.0 or top_k is not None or top_p is not None:
        tl, dl, t = warp_logits(tl, t, top_k, top_p), warp_logits(dl, t, top_k, top_p), 1.0
    dtype = jnp.result_type(tl.dtype, dl.dtype, jnp.float32)
    u = _v.check_uniforms(uniforms, g + 1).astype(dtype)
    tl, dl = tl.astype(dtype), dl.astype(dtype)
    m_t = jnp.max(tl, axis=-1)
    m_d = jnp.max(dl, axis=-1)
    lse_t = _log_norm(tl, m_t, t)
    lse_d = _log_norm(dl, m_d, t)
    ok_d = _core.in_vocab(drafts, V)
    x = jnp.clip(drafts, 0, V - 1)
    idx = jnp.arange(g)
    log_px = jnp.where(ok_d, shift_scale(tl[idx, x], m_t[:g], t) - lse_t[:g], -jnp.inf)
    log_qx = jnp.where(ok_d, shift_scale(dl[idx, x], m_d, t) - lse_d, -jnp.inf)
    ok = jnp.log(u[:g]) + log_qx < log_px
    k = jnp.sum(jnp.cumprod(ok.astype(jnp.int32)))
    p_k = jnp.exp(shift_scale(tl[k], m_t[k], t) - lse_t[k])
    if g > 0:
        j = jnp.minimum(k, g - 1)
        q_k = jnp.where(k < g, jnp.exp(shift_scale(dl[j], m_d[j], t) - lse_d[j]), 0)
    else:
        q_k = jnp.zeros((V,), dtype)
    y = _core.sample_index(u[g], _core.residual_weights(p_k, q_k))
    return _emit(k, y, drafts, g)


def _log_norm(x, m, t: float):
    """``logsumexp((x - m) / T)`` along the last axis, with ``m`` the row maxima of ``x``: the
    shifted maximum is 0, so the sum lies in ``[1, V]`` and needs no second shift (NaN for a
    row that is all ``-inf``)."""
    return jnp.log(jnp.sum(jnp.exp(shift_scale(x, m[..., None], t)), axis=-1))


def chain_from_logits(key, target_logits, draft_logits, drafts, temperature=1.0, top_k=None,
                      top_p=None) -> ChainResult:
    """Token verification from logits, drawing the ``gamma + 1`` uniforms from ``key``.

    See :func:`chain_from_logits_with_uniforms`.

    Args:
      key: a ``jax.random`` key.
      target_logits: float[gamma+1, V]; draft_logits: float[gamma, V]; drafts: int[gamma].
      temperature: static Python float >= 0 (0 = greedy).
      top_k, top_p: optional static warping, applied identically to both laws.

    Returns:
      :class:`ChainResult`: ``tokens`` int32[gamma+1] (the accepted drafts, then one corrected
      or bonus token, padded with -1) and ``num_accepted`` int32[] in ``0..gamma``.

    Raises:
      ValueError: as :func:`chain_from_logits_with_uniforms`: a bad ``temperature``, ``top_k``
        or ``top_p``; logits that are not floating ``[rows, V]`` arrays of one vocabulary (or,
        concrete, hold NaN/+inf or an all ``-inf`` row); ``target_logits`` without
        ``gamma + 1`` rows; ``drafts`` not ``gamma`` ids in ``[0, V)``.
    """
    dtype = jnp.result_type(target_logits, draft_logits, jnp.float32)
    g = jnp.shape(draft_logits)[0]
    u = jax.random.uniform(key, (g + 1,), dtype)
    return chain_from_logits_with_uniforms(u, target_logits, draft_logits, drafts, temperature, top_k, top_p)


TOKEN = ChainVerifier(
    name="token",
    verify=chain,
    verify_with_uniforms=chain_with_uniforms,
    kernel=chain_kernel,
    num_uniforms=lambda gamma: gamma + 1,
    description="token-by-token verification of a draft chain (Leviathan et al. 2023)",
)
"""Token-by-token chain verification as a value: ``gamma`` acceptance coins, then one draw."""
