r"""Block verification of a draft chain (Sun et al., ICLR 2025).

For one draft chain :math:`X_1..X_\gamma`, block verification computes the acceptance weights
:math:`p_i` and stopping probabilities :math:`h_i` (:func:`block_quantities`), draws
:math:`\eta_i \sim U(0, 1)` for every position (no early stop) and keeps
:math:`\tau = \max\{i : \eta_i < h_i\}` drafts, then one more token from the residual at
:math:`\tau`. It is lossless and optimal among lossless single-chain verifiers,
:math:`E[\tau] = \sum_i E[p_i(X^i)]`, and equals token verification at :math:`\gamma = 1`.

:data:`BLOCK` is block verification as a :class:`~spectheory.ChainVerifier` value
(:func:`block`, :func:`block_with_uniforms`, :func:`block_kernel`, ``gamma + 1`` uniforms, the
layout of :data:`spectheory.verify.TOKEN`, so both rules replay on the same noise).

>>> import jax.numpy as jnp
>>> p = jnp.array([[1/3, 2/3]] * 3); q = jnp.array([[2/3, 1/3]] * 2)
>>> r = BLOCK.verify_with_uniforms(jnp.array([0.9, 0.2, 0.5]), p, q, jnp.array([0, 1]))
>>> int(r.num_accepted), BLOCK.num_uniforms(2)
(2, 3)

References:
  Sun, Mendlovic, Leviathan, Aharoni, Ro, Beirami, Suresh. Block Verification Accelerates
  Speculative Decoding, ICLR 2025 (arXiv 2403.10444).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from spectheory import _core
from spectheory import _validation as _v
from spectheory._registry import ChainVerifier
from spectheory.verify._chain import ChainResult, _check_chain, _emit


class BlockQuantities(NamedTuple):
    r"""The deterministic part of block verification for one draft chain.

    Attributes:
      p: the running acceptance weights :math:`p_0 = 1, p_1, \dots, p_\gamma`.
        # shape=(gamma+1,), dtype=float
      h: the stopping probabilities :math:`h_1, \dots, h_\gamma` (``h[i-1]`` is
        :math:`h_i`).  # shape=(gamma,), dtype=float
      residual: unnormalised law of the next token when :math:`\tau = i`: row ``i < gamma``
        is :math:`(p_i M_b(\cdot \mid X^i) - M_s(\cdot \mid X^i))_+` (or the target row when
        that has zero mass), row ``gamma`` the target row :math:`M_b(\cdot \mid X^\gamma)`.
        # shape=(gamma+1, V), dtype=float
    """

    p: jax.Array
    h: jax.Array
    residual: jax.Array


def _quantities(p, q, drafts, g) -> BlockQuantities:
    """Branch-free :math:`p_i`, :math:`h_i` and residual rows (inputs already checked)."""
    pb = _core.take_rows(p[:g], drafts)  # M_b(X_i | X^{i-1}); 0 for an id outside [0, V)
    ps = _core.take_rows(q, drafts)  # M_s(X_i | X^{i-1})

    # p_i = min(1, p_{i-1} b_i / s_i), unrolled over the static gamma (cheap eagerly and
    # under jit). Where s_i = 0 the limit is 1 if p_{i-1} b_i > 0, else 0.
    # (A NaN ratio stays NaN, so it reaches h and the flag.)
    safe_s = jnp.where(ps == 0, 1, ps)
    pw = [jnp.ones((), p.dtype)]
    for i in range(g):
        num = pw[-1] * pb[i]
        pw.append(jnp.where(ps[i] == 0, (num > 0).astype(p.dtype), jnp.minimum(1, num / safe_s[i])))
    pw = jnp.stack(pw)  # p_0..p_gamma
    # residual weights (p_i M_b(.|X^i) - M_s(.|X^i))_+ for i = 0..gamma-1
    w = jnp.maximum(pw[:g, None] * p[:g] - q, 0)
    A = jnp.sum(w, axis=-1)
    den = A + 1 - pw[:g]
    h_mid = jnp.where(den > 0, A / jnp.where(den > 0, den, 1), 1)
    # h_i for i = 1..gamma: A_i / (A_i + 1 - p_i) for i < gamma, h_gamma = p_gamma
    h = jnp.concatenate([h_mid[1:], pw[g:]]) if g > 0 else jnp.zeros((0,), p.dtype)
    w = jnp.where(A[:, None] == 0, p[:g], w)  # a NaN stays (the sampler flags it)
    residual = jnp.concatenate([w, p[g:]], axis=0)
    return BlockQuantities(pw, h, residual)


def block_quantities(p, q, drafts) -> BlockQuantities:
    r"""The acceptance weights, stopping probabilities and residuals of block verification.

    With :math:`M_b(\cdot \mid X^i)` = ``p[i]`` (target) and :math:`M_s(\cdot \mid X^i)` =
    ``q[i]`` (draft), :math:`p_0 = 1` and for :math:`i = 1..\gamma`

    .. math::
        p_i = \min\Big(1, p_{i-1} \frac{M_b(X_i \mid X^{i-1})}{M_s(X_i \mid X^{i-1})}\Big),
        \qquad
        A_i = \sum_x \big(p_i M_b(x \mid X^i) - M_s(x \mid X^i)\big)_+,

    .. math::
        h_i = \frac{A_i}{A_i + 1 - p_i} \ (i < \gamma;\ h_i = 1 \text{ when } A_i + 1 - p_i = 0),
        \qquad h_\gamma = p_\gamma.

    Where :math:`M_s(X_i \mid X^{i-1}) = 0` the ratio's limit is used (1 if
    :math:`p_{i-1} M_b(X_i \mid X^{i-1}) > 0`, else 0), so nothing is ever ``0/0``.

    Args:
      p: target conditionals, float[gamma+1, V].
      q: draft conditionals, float[gamma, V].
      drafts: int[gamma].

    Returns:
      :class:`BlockQuantities`.

    >>> import jax.numpy as jnp
    >>> p = jnp.array([[1/3, 2/3]] * 3); q = jnp.array([[2/3, 1/3]] * 2)
    >>> [round(float(x), 4) for x in block_quantities(p, q, jnp.array([0, 1])).p]
    [1.0, 0.5, 1.0]

    References:
      Sun, Mendlovic, Leviathan, Aharoni, Ro, Beirami, Suresh. Block Verification Accelerates
      Speculative Decoding, ICLR 2025 (arXiv 2403.10444), Algorithm 2.
    """
    p, q, drafts, g, V = _check_chain(p, q, drafts)
    return _quantities(p, q, drafts, g)


def block_with_uniforms(uniforms, p, q, drafts) -> ChainResult:
    r"""Block verification of a draft chain with explicit noise.

    With :math:`h_i` from :func:`block_quantities` and :math:`\eta_i` = ``uniforms[i-1]``
    (no early stop),

    .. math::
        \tau = \max\{\, i \in 1..\gamma : \eta_i < h_i \,\} \quad (\tau = 0 \text{ if none}),

    then the drafts :math:`X^\tau` are kept and one more token is drawn by inverse CDF with
    ``uniforms[gamma]`` from

    .. math::
        y \sim \mathrm{norm}\big((p_\tau M_b(\cdot \mid X^\tau) - M_s(\cdot \mid X^\tau))_+\big)
        \ (\tau < \gamma), \qquad y \sim M_b(\cdot \mid X^\gamma) \ (\tau = \gamma).

    The uniforms have the same layout as :func:`~spectheory.verify.chain_with_uniforms`
    (``gamma`` decisions, then one sample), so the two rules can be replayed on the same noise.
    The strict test :math:`\eta_i < h_i` has probability exactly :math:`h_i` for
    :math:`\eta_i \sim U[0, 1)`: ``h = 0`` never marks ``i`` and ``h = 1`` always does.

    Args:
      uniforms: float[gamma+1] i.i.d. U[0, 1).
      p: target conditionals, float[gamma+1, V]; row ``i`` is the target law after the
        prefix and the first ``i`` drafts.
      q: draft conditionals the drafts were drawn from, float[gamma, V].
      drafts: int[gamma].

    Returns:
      :class:`~spectheory.verify.ChainResult` ``(tokens int32[gamma+1], num_accepted)``,
      ``num_accepted`` = :math:`\tau`.

    Batch with ``jax.vmap(block_with_uniforms)``.

    >>> import jax.numpy as jnp
    >>> p = jnp.array([[1/3, 2/3]] * 3); q = jnp.array([[2/3, 1/3]] * 2)
    >>> r = block_with_uniforms(jnp.array([0.9, 0.2, 0.5]), p, q, jnp.array([0, 1]))
    >>> r.tokens.tolist(), int(r.num_accepted)
    ([0, 1, 1], 2)

    References:
      Sun et al., Block Verification Accelerates Speculative Decoding, ICLR 2025
      (arXiv 2403.10444), Algorithm 2 (block verification).
    """
    p, q, drafts, g, V = _check_chain(p, q, drafts)
    u = _v.check_uniforms(uniforms, g + 1).astype(p.dtype)
    bq = _quantities(p, q, drafts, g)
    hit = u[:g] < bq.h
    tau = jnp.max(jnp.where(hit, jnp.arange(1, g + 1), 0), initial=0).astype(jnp.int32)
    y = _core.sample_index(u[g], bq.residual[tau])
    y = jnp.where(jnp.any(jnp.isnan(bq.h)), _core.INVALID, y)  # tau read every h: a NaN flags
    return _emit(tau, y, drafts, g)


def block(key, p, q, drafts) -> ChainResult:
    r"""Block verification of a draft chain, drawing its ``gamma + 1`` uniforms from ``key``.

    Same as :func:`block_with_uniforms` with ``jax.random.uniform(key, (gamma + 1,), dtype)``
    (the same noise :func:`~spectheory.verify.chain` draws from the same key).

    .. math:: \tau = \max\{i : \eta_i < h_i\}, \qquad E[\tau] = \sum_{i=1}^{\gamma} E[p_i(X^i)].

    Args:
      key: a ``jax.random`` key.
      p: float[gamma+1, V] target conditionals.
      q: float[gamma, V] draft conditionals.
      drafts: int[gamma].

    Returns:
      :class:`~spectheory.verify.ChainResult`.

    >>> import jax, jax.numpy as jnp
    >>> p = jnp.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]])
    >>> res = block(jax.random.key(0), p, p[:2], jnp.array([1, 0]))
    >>> res.tokens.shape, int(res.num_accepted)
    ((3,), 2)

    References:
      Sun et al., Block Verification Accelerates Speculative Decoding, ICLR 2025
      (arXiv 2403.10444).
    """
    dtype = _core.float_dtype(p, q)
    g = jnp.shape(q)[0]
    return block_with_uniforms(jax.random.uniform(key, (g + 1,), dtype), p, q, drafts)


def block_kernel(p, q, drafts) -> jax.Array:
    r"""Exact joint law of (:math:`\tau`, next token) for block verification.

    With :math:`h_i` and the residual rows :math:`r_i` of :func:`block_quantities`
    (normalised) and :math:`h_0 = 1`,

    .. math::
        K[i, y] = h_i \prod_{j=i+1}^{\gamma} (1 - h_j)\; r_i(y), \qquad i = 0..\gamma,

    where :math:`r_\gamma = M_b(\cdot \mid X^\gamma)`. Rows sum to :math:`P(\tau = i)`.

    Args:
      p: float[gamma+1, V]; q: float[gamma, V]; drafts: int[gamma].

    Returns:
      float[gamma+1, V] summing to one (same layout as
      :func:`~spectheory.verify.chain_kernel`).

    >>> import jax.numpy as jnp
    >>> p = jnp.array([[1/3, 2/3]] * 3); q = jnp.array([[2/3, 1/3]] * 2)
    >>> K = block_kernel(p, q, jnp.array([0, 0]))
    >>> [round(float(x), 4) for x in K.sum(axis=1)]
    [0.75, 0.0, 0.25]

    References:
      Sun et al., Block Verification Accelerates Speculative Decoding, ICLR 2025
      (arXiv 2403.10444), Algorithm 2.
    """
    p, q, drafts, g, V = _check_chain(p, q, drafts)
    bq = _quantities(p, q, drafts, g)
    h = jnp.concatenate([jnp.ones((1,), p.dtype), bq.h])
    # survive[i] = prod_{j > i} (1 - h_j)
    tail = jnp.concatenate([jnp.cumprod((1 - bq.h)[::-1])[::-1], jnp.ones((1,), p.dtype)])
    prob_tau = h * tail
    return prob_tau[:, None] * _core.normalize(bq.residual)


BLOCK = ChainVerifier(
    name="block",
    verify=block,
    verify_with_uniforms=block_with_uniforms,
    kernel=block_kernel,
    num_uniforms=lambda gamma: gamma + 1,
    description="block verification of a draft chain, optimal for one chain (Sun et al. 2025)",
)
"""Block verification as a value: ``gamma`` stopping coins, then one draw (``gamma + 1``
uniforms, the layout of :data:`spectheory.verify.TOKEN`)."""
