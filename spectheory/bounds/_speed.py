"""Speed models of speculative decoding (private; pure JAX)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from spectheory._validation import is_concrete
from spectheory.sampling._traced import any_traced, nan_where

__all__ = [
    "OptimalGamma",
    "expected_tokens_per_call",
    "walltime_improvement",
    "optimal_gamma",
    "tree_acceptance_probabilities",
    "tree_expected_length",
]


def _as_float(x, name):
    """``x`` as a floating array of at least float32 (Python floats give the default float)."""
    try:
        arr = jnp.asarray(x) if is_concrete(x) else x
    except TypeError:
        raise TypeError(f"{name}: expected a number or a numeric array, got {type(x).__name__}") from None
    if arr.dtype == bool or not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)):
        raise ValueError(f"{name}: expected a number or a numeric array, got dtype {arr.dtype}")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    arr = arr.astype(jnp.promote_types(arr.dtype, jnp.float32))
    if is_concrete(arr) and arr.size and not np.all(np.isfinite(np.asarray(arr, dtype=np.float64))):
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def _check_alpha(alpha):
    a = _as_float(alpha, "alpha")
    if is_concrete(a) and a.size:
        aa = np.asarray(a, dtype=np.float64)
        if np.any(aa < 0) or np.any(aa > 1):
            raise ValueError(f"alpha: expected values in [0, 1], got range [{aa.min():.3g}, {aa.max():.3g}]")
    return a


def _check_gamma(gamma):
    try:
        g = jnp.asarray(gamma) if is_concrete(gamma) else gamma
    except TypeError:
        raise TypeError(f"gamma: expected an int or an int array, got {type(gamma).__name__}") from None
    if g.dtype == bool or not (jnp.issubdtype(g.dtype, jnp.floating) or jnp.issubdtype(g.dtype, jnp.integer)):
        raise ValueError(f"gamma: expected non-negative integers, got dtype {g.dtype}")
    if is_concrete(g) and g.size:
        gg = np.asarray(g)
        if not np.all(np.isfinite(gg.astype(np.float64))) or np.any(gg < 0) or np.any(gg != np.round(gg)):
            raise ValueError(f"gamma: expected non-negative integers, got {gg!r}")
    return g


def _check_cost(c):
    c = _as_float(c, "c")
    if is_concrete(c) and c.size and np.any(np.asarray(c, dtype=np.float64) < 0):
        raise ValueError("c: expected a non-negative cost ratio")
    return c


def _alpha_ok(a):
    return (a >= 0) & (a <= 1)  # NaN fails both


def _gamma_ok(g):
    return (g >= 0) & (g < jnp.inf) & (g == jnp.round(g))


def _cost_ok(c):
    return (c >= 0) & (c < jnp.inf)


def _geometric_sum(alpha, k):
    """``sum_{i<k} alpha^i = (1 - alpha^k)/(1 - alpha)``, accurate near ``alpha = 1``.

    Written as ``expm1(k log α) / expm1(log α)`` with ``log α = log1p(α - 1)``; exact limits
    ``k`` at ``α = 1`` and ``1`` at ``α = 0`` (for ``k >= 1``).
    """
    dtype = jnp.promote_types(alpha.dtype, jnp.float32)
    alpha = jnp.asarray(alpha, dtype)
    k = jnp.asarray(k, dtype)
    la = jnp.log1p(alpha - 1)
    safe = jnp.where(alpha < 1, la, -1.0)
    ratio = jnp.expm1(k * safe) / jnp.expm1(safe)
    return jnp.where(alpha < 1, ratio, k)


def expected_tokens_per_call(alpha, gamma):
    r"""Expected tokens produced per target call with ``γ`` drafted tokens (Leviathan et al.).

    With a per-token acceptance rate ``α`` assumed i.i.d. along the chain,

    .. math::

        \mathbb{E}[\text{tokens per call}] = \frac{1 - \alpha^{\gamma+1}}{1 - \alpha}
        = \sum_{i=0}^{\gamma} \alpha^i \qquad (= \gamma + 1 \text{ at } \alpha = 1).

    Args:
      alpha: acceptance rate(s) in ``[0, 1]``, float[...].
      gamma: number(s) of drafted tokens, non-negative int[...] (broadcast against ``alpha``).

    Returns:
      float[...] expected tokens per call (always ≥ 1); NaN where a traced input (under
      ``jit``/``vmap``) is invalid.

    Raises:
      ValueError: (eager) NaN/inf, ``alpha`` outside ``[0, 1]``, or a negative or
        non-integer ``gamma``.

    Example:
      >>> from spectheory.bounds import expected_tokens_per_call
      >>> round(float(expected_tokens_per_call(0.75, 7)), 4)
      3.5995
      >>> float(expected_tokens_per_call(1.0, 7))
      8.0

    References:
      Leviathan, Kalman, Matias. Fast Inference from Transformers via Speculative Decoding.
      ICML 2023, arXiv:2211.17192.
    """
    a = _check_alpha(alpha)
    g = _check_gamma(gamma)
    out = _geometric_sum(a, g + 1)
    if any_traced(a, g):
        out = jnp.where(_alpha_ok(a) & _gamma_ok(g), out, jnp.nan)
    return out


def walltime_improvement(alpha, gamma, c):
    r"""Expected wall-time improvement factor over plain decoding (Leviathan et al.).

    With ``c`` the cost of one draft step relative to one target step,

    .. math::

        \text{improvement} = \frac{1 - \alpha^{\gamma+1}}{(1 - \alpha)(\gamma c + 1)}.

    Args:
      alpha: acceptance rate(s) in ``[0, 1]``, float[...].
      gamma: drafted tokens per call, non-negative int[...].
      c: draft/target cost ratio(s) ≥ 0, float[...]. All three broadcast together.

    Returns:
      float[...] improvement factor (1 means no gain); NaN where a traced input is invalid.

    Raises:
      ValueError: (eager) as :func:`expected_tokens_per_call`, or a negative ``c``.

    Example:
      >>> from spectheory.bounds import walltime_improvement
      >>> round(float(walltime_improvement(0.75, 7, 0.05)), 4)
      2.6663

    References:
      Leviathan, Kalman, Matias. Fast Inference from Transformers via Speculative Decoding.
      ICML 2023, arXiv:2211.17192.
    """
    a = _check_alpha(alpha)
    g = _check_gamma(gamma)
    c = _check_cost(c)
    tokens = _geometric_sum(a, g + 1)
    out = tokens / (g * c + 1)
    if any_traced(a, g, c):
        out = jnp.where(_alpha_ok(a) & _gamma_ok(g) & _cost_ok(c), out, jnp.nan)
    return out


class OptimalGamma(NamedTuple):
    """Best integer draft length.

    Attributes:
      gamma: γ* in ``[0, max_gamma]`` (0: plain decoding is best); ``-1`` flags an invalid
        traced input. # shape=[...], dtype=int32
      improvement: the wall-time improvement at γ* (NaN for an invalid traced input).
        # shape=[...], dtype=float
    """

    gamma: jax.Array
    improvement: jax.Array


def optimal_gamma(alpha, c, *, max_gamma: int = 64) -> OptimalGamma:
    r"""Integer draft length maximising :func:`walltime_improvement`.

    .. math::

        \gamma^* = \arg\max_{\gamma \in \{0, \dots, \gamma_{\max}\}}
            \frac{1 - \alpha^{\gamma+1}}{(1 - \alpha)(\gamma c + 1)}

    (smallest maximiser on ties). ``γ = 0`` is plain decoding (improvement 1).

    Args:
      alpha: acceptance rate(s) in ``[0, 1]``, float[...].
      c: draft/target cost ratio(s) ≥ 0, float[...] (broadcast against ``alpha``).
      max_gamma: largest γ searched (static).

    Returns:
      :class:`OptimalGamma` ``(gamma, improvement)``; under ``jit``/``vmap`` an invalid
      ``alpha`` or ``c`` gives ``gamma = -1`` and ``improvement = NaN``.

    Raises:
      ValueError: a bad ``max_gamma``; (eager) NaN/inf, ``alpha`` outside ``[0, 1]``,
        negative ``c``.

    Example:
      >>> from spectheory.bounds import optimal_gamma
      >>> res = optimal_gamma(0.8, 0.05)
      >>> int(res.gamma), round(float(res.improvement), 4)
      (8, 3.0921)

    References:
      Leviathan, Kalman, Matias. Fast Inference from Transformers via Speculative Decoding.
      ICML 2023, arXiv:2211.17192.
    """
    if isinstance(max_gamma, bool) or not isinstance(max_gamma, (int, np.integer)) or max_gamma < 0:
        raise ValueError(f"max_gamma: expected a non-negative int, got {max_gamma!r}")
    a = _check_alpha(alpha)
    c = _check_cost(c)
    dtype = jnp.promote_types(a.dtype, c.dtype)
    a = jnp.asarray(a, dtype)[..., None]
    c = jnp.asarray(c, dtype)[..., None]
    g = jnp.arange(int(max_gamma) + 1, dtype=dtype)
    imp = _geometric_sum(a, g + 1) / (g * c + 1)
    best = jnp.argmax(imp, axis=-1).astype(jnp.int32)
    value = jnp.max(imp, axis=-1)
    if any_traced(a, c):
        ok = (_alpha_ok(a) & _cost_ok(c))[..., 0]
        best, value = jnp.where(ok, best, -1), nan_where(ok, value)
    return OptimalGamma(best, value)


def _check_parents(parents) -> np.ndarray:
    if not is_concrete(parents):
        raise TypeError("parents: must be static (a concrete int array), got a traced array")
    par = np.asarray(parents)
    if par.ndim != 1 or par.size == 0:
        raise ValueError(f"parents: expected a non-empty 1-d int array, got shape {par.shape}")
    if not np.issubdtype(par.dtype, np.integer):
        raise ValueError(f"parents: expected integer indices, got dtype {par.dtype}")
    if par[0] != -1:
        raise ValueError("parents: node 0 must be the root (parents[0] == -1)")
    idx = np.arange(par.size)
    if np.any(par[1:] < 0) or np.any(par[1:] >= idx[1:]):
        raise ValueError("parents: every node v >= 1 needs 0 <= parents[v] < v (topological order)")
    return par.astype(np.int32)


def tree_acceptance_probabilities(parents, accept_probs):
    r"""Probability that each node of a draft tree is accepted.

    Nodes are numbered in topological order, node 0 being the root (the last verified token,
    always "accepted"); ``accept_probs[v]`` is the probability that ``v`` is accepted given its
    parent was. Verification walks down one path, so

    .. math::

        P(v \text{ accepted}) = \prod_{u \in \mathrm{path}(\mathrm{root} \to v),\, u \ne \mathrm{root}} a_u ,

    computed by pointer doubling in ``ceil(log2 N)`` rounds.

    Args:
      parents: static int[N], ``parents[0] = -1`` and ``0 <= parents[v] < v``.
      accept_probs: float[..., N] conditional acceptance probabilities (entry 0 is ignored).

    Returns:
      float[..., N] marginal acceptance probabilities (1 at the root); under ``jit``/``vmap``
      NaN on every row whose ``accept_probs`` are invalid.

    Raises:
      ValueError: malformed ``parents`` (not ``-1`` at the root, a parent after its child);
        (eager) ``accept_probs`` not in ``[0, 1]`` or siblings summing to more than one.
      TypeError: traced ``parents``.

    Example:
      >>> from spectheory.bounds import tree_acceptance_probabilities
      >>> tree_acceptance_probabilities([-1, 0, 1, 0], [1.0, 0.5, 0.5, 0.25]).tolist()
      [1.0, 0.5, 0.25, 0.25]

    References:
      Miao et al. SpecInfer: Accelerating Large Language Model Serving with Tree-based
      Speculative Inference and Verification. ASPLOS 2024, arXiv:2305.09781.
    """
    par = _check_parents(parents)
    a = _as_float(accept_probs, "accept_probs")
    if a.ndim == 0 or a.shape[-1] != par.size:
        raise ValueError(f"accept_probs: expected last axis {par.size} (one per node), got shape {tuple(a.shape)}")
    if is_concrete(a):
        aa = np.asarray(a, dtype=np.float64)
        if np.any(aa < 0) or np.any(aa > 1):
            raise ValueError("accept_probs: expected probabilities in [0, 1]")
        sib = np.zeros((par.size,) + aa.shape[:-1])
        np.add.at(sib, par[1:], np.moveaxis(aa, -1, 0)[1:])
        if np.any(sib > 1 + 1e-6):
            raise ValueError("accept_probs: the children of a node must have acceptance probabilities summing to <= 1")
    anc = np.where(np.arange(par.size) == 0, 0, par)
    prod = a.at[..., 0].set(1)
    for _ in range(max(1, int(np.ceil(np.log2(par.size))))):
        prod = prod * jnp.take(prod, jnp.asarray(anc), axis=-1)
        anc = anc[anc]
    if any_traced(a):
        sib = jnp.zeros(a.shape, a.dtype).at[..., jnp.asarray(par[1:])].add(a[..., 1:])
        ok = jnp.all(_alpha_ok(a), -1) & jnp.all(sib <= 1 + 1e-6, -1)
        prod = nan_where(ok, prod)
    return prod


def tree_expected_length(parents, accept_probs):
    r"""Expected number of accepted draft tokens in one verification of a draft tree.

    The accepted nodes always form a path from the root (siblings exclude each other), so the
    accepted length is the number of accepted non-root nodes and, by linearity,

    .. math::

        \mathbb{E}[L] = \sum_{v \ne \mathrm{root}}\ \prod_{u \in \mathrm{path}(\mathrm{root} \to v),\,
            u \ne \mathrm{root}} a_u .

    The tokens produced per target call are ``E[L] + 1`` (the residual or bonus token). A chain
    of ``γ`` nodes with ``a_u = α`` gives ``α + … + α^γ = expected_tokens_per_call(α, γ) - 1``.

    Args:
      parents: static int[N] in topological order with ``parents[0] = -1`` (the root).
      accept_probs: float[..., N], ``a_v = P(v accepted | parent accepted)``; children of one
        node must sum to at most 1 (checked on eager calls); entry 0 is ignored.

    Returns:
      float[...] expected accepted length (NaN for invalid traced ``accept_probs``).

    Raises:
      ValueError, TypeError: as :func:`tree_acceptance_probabilities`.

    Example:
      >>> from spectheory.bounds import tree_expected_length
      >>> round(float(tree_expected_length([-1, 0, 1, 0], [1.0, 0.5, 0.5, 0.25])), 4)
      1.0

    References:
      Miao et al. SpecInfer, ASPLOS 2024, arXiv:2305.09781; Leviathan et al. 2023,
      arXiv:2211.17192.
    """
    probs = tree_acceptance_probabilities(parents, accept_probs)
    return jnp.sum(probs[..., 1:], axis=-1)
