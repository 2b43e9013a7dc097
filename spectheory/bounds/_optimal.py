"""Optimal multi-draft acceptance α*(p, Q) from the dual (min-cut) closed form (private).

For a draft law ``Q`` over tuples of ``n`` drafts, the best acceptance rate of any lossless
verifier is (Hu et al. 2025, dual of the optimal-transport LP)

    α*(p, Q) = min over H ⊆ V of [ p(H) + 1 − Q(all drafts lie in H) ].

A draft scheme (a :class:`spectheory.DraftScheme` or its registered name) enters through the
family of its draft *set*, ``scheme.family``; for the three families handled here the minimising
``H`` can be found without enumerating subsets:

* ``"iid"``: ``H`` is a threshold set ``{p < μ q}`` and, by convex conjugacy of ``Q ↦ Q^n``, the
  best threshold minimises a one-dimensional function of ``μ`` that is bounded on any interval
  from two evaluations, so a branch-and-bound over ``μ`` needs a handful of passes over the
  vocabulary and no sort;
* ``"without_replacement"``: ``H`` is a prefix of the tokens sorted by ``p/q`` ascending
  (``q = 0`` last), so one sort and a search over prefixes suffice (``_race``: an exact scan,
  or blocks of the order for large vocabularies);
* ``"greedy"``: closed form.

Everything below is pure JAX; the public functions resolve the scheme to its family string and
validate eagerly, and the cores are traceable under ``jit``/``vmap`` with ``n``, the family
string and ``num_nodes`` static.
"""

from __future__ import annotations

import functools
import os
from typing import NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from spectheory import _registry
from spectheory import drafts as _drafts  # noqa: F401  (registers the built-in schemes)
from spectheory._registry import DraftScheme
from spectheory._validation import as_probs, check_n, is_concrete, same_vocab
from spectheory.sampling._traced import any_traced, nan_where, probs_ok
from spectheory.bounds._race import (
    _BLOCKED_MIN_V,
    _cumsum,
    _default_nodes,
    _race_all_in,
    _race_nodes,
    _race_start,
    _race_update,
    _suffix_after,
    _tie_tol,
    _wor_best,
)

__all__ = [
    "OptimalAcceptance",
    "optimal_acceptance",
    "all_in_probability",
]

#: Set-law families (``DraftScheme.family``) with a known optimal acceptance.
_FAMILIES = ("iid", "without_replacement", "greedy")


class OptimalAcceptance(NamedTuple):
    """Optimal acceptance rate and its certificate.

    Attributes:
      value: α*, the largest acceptance rate of any lossless verifier for the draft law.
        # shape=[...], dtype=float
      certificate: the minimising set ``H`` of the dual, as a mask over the vocabulary:
        ``value == p(H) + 1 - Q(all drafts in H)``. # shape=[..., V], dtype=bool
    """

    value: jax.Array
    certificate: jax.Array


# ----------------------------------------------------------------------------------------------
# front door helpers (shared with the vocabulary-trimming module)
# ----------------------------------------------------------------------------------------------


def _resolve_family(scheme) -> tuple[DraftScheme, str]:
    """Resolve a draft scheme (object or registered name) to ``(scheme, family)``."""
    try:
        s = _registry.scheme(scheme)
    except TypeError:
        raise ValueError(f"scheme: expected a DraftScheme or a registered scheme name, got {scheme!r}") from None
    if s.family not in _FAMILIES:
        raise ValueError(f"scheme: draft scheme {s.name!r} has set-law family {s.family!r}; the optimal acceptance "
                         f"is known for the families {_FAMILIES}")
    return s, s.family


def _check_family_n(s: DraftScheme, family: str, n, V: int, support) -> int:
    """``n`` for the scheme: distinct-token families need ``n <= support``, and the scheme
    itself must draw ``n`` drafts over ``V`` tokens (e.g. SpecHub's hub drafts: ``n = 2``)."""
    n = check_n(n, "n", V=V, replacement=family == "iid", support=support)
    if not s.supports(n, V):
        raise ValueError(f"n: draft scheme {s.name!r} does not draw n={n} drafts over V={V} tokens")
    return n


def _check_num_nodes(num_nodes):
    if num_nodes is None:
        return None
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)) or num_nodes < 2:
        raise ValueError(f"num_nodes: expected an int >= 2 or None, got {num_nodes!r}")
    return int(num_nodes)


def _min_support(q) -> int | None:
    """Smallest number of positive entries over the rows of a concrete ``q`` (else ``None``)."""
    if not is_concrete(q):
        return None
    qq = np.asarray(q)
    if qq.size == 0:
        return None
    return int(np.min(np.sum(qq > 0, axis=-1)))


def _traced_ok(p, q, n, family):
    """bool[...] validity of traced ``p, q[..., V]`` rows (laws; ``n <= #{q > 0}`` for the
    families drawing distinct tokens); only computed under ``jit``/``vmap``."""
    ok = probs_ok(q) if p is None else probs_ok(p) & probs_ok(q)
    if family != "iid":
        ok = ok & (jnp.sum(q > 0, -1) >= n)
    return ok


def _broadcast_pq(p, q):
    """Broadcast the leading axes of ``p`` and ``q`` and cast both to a common float dtype."""
    dtype = jnp.result_type(p.dtype, q.dtype, jnp.float32)
    lead = jnp.broadcast_shapes(p.shape[:-1], q.shape[:-1])
    V = p.shape[-1]
    p = jnp.broadcast_to(p.astype(dtype), lead + (V,))
    q = jnp.broadcast_to(q.astype(dtype), lead + (V,))
    return p, q, lead


def _validate(p, q, n, scheme, num_nodes=None):
    s, family = _resolve_family(scheme)
    p = as_probs(p, "p", ndim=None)
    q = as_probs(q, "q", ndim=None)
    V = same_vocab(p, q)
    support = None if family == "iid" else _min_support(q)
    n = _check_family_n(s, family, n, V, support)
    num_nodes = _check_num_nodes(num_nodes)
    return p, q, n, family, num_nodes


# ----------------------------------------------------------------------------------------------
# sorting by likelihood ratio
# ----------------------------------------------------------------------------------------------


def _ratios(p, q):
    """``p/q`` where ``q > 0``; ``+inf`` where ``q == 0`` (those tokens go last)."""
    pos = q > 0
    r = jnp.where(pos, p / jnp.where(pos, q, 1), jnp.inf)
    return jnp.where(r > 0, r, jnp.zeros_like(r))  # +0.0 for p == 0 (never -0.0)


def _sort_by_ratio(r, packed: bool | None = None):
    """Order the last axis of ``r`` ascending; ties (and the ``+inf`` block) by token index.

    Returns ``(perm, before)`` where ``perm[..., k]`` is the token at position ``k`` and
    ``before(m)`` gives, for an int array ``m[...]``, the mask of tokens at positions ``< m``.

    XLA's CPU sort is an order of magnitude faster on a single integer operand than on float
    keys with a payload, so with x64 enabled the ratio's bit pattern (monotone for non-negative
    floats) and the token index are packed into one int64 key. For float64 ratios the lowest
    ``ceil(log2 V)`` mantissa bits are dropped, so ratios agreeing to ~1e-10 relative are
    ordered by index; this moves α* by at most that relative amount. ``packed=False`` forces
    the (slower) float-key sort, ``None`` picks the packed key whenever x64 is enabled.
    """
    V = r.shape[-1]
    iota = lax.broadcasted_iota(jnp.int32, r.shape, r.ndim - 1)
    idx_bits = max(1, (V - 1).bit_length())
    if packed is None:
        packed = bool(jax.config.read("jax_enable_x64")) and idx_bits <= 31
    if packed:
        if r.dtype == jnp.float64:
            bits = lax.bitcast_convert_type(r, jnp.int64)
            bits = (bits >> idx_bits) << idx_bits
        else:
            bits = lax.bitcast_convert_type(r.astype(jnp.float32), jnp.int32).astype(jnp.int64) << idx_bits
        key = bits | iota.astype(jnp.int64)
        skey = lax.sort(key, dimension=r.ndim - 1)
        perm = (skey & ((1 << idx_bits) - 1)).astype(jnp.int32)
        big = jnp.iinfo(jnp.int64).max
        skey_ext = jnp.concatenate([skey, jnp.full(skey.shape[:-1] + (1,), big, skey.dtype)], -1)

        def before(m):
            kth = jnp.take_along_axis(skey_ext, m[..., None], axis=-1)
            return key < kth

        return perm, before

    sr, perm = lax.sort((r, iota), dimension=r.ndim - 1, num_keys=1, is_stable=True)
    sr_ext = jnp.concatenate([sr, jnp.full(sr.shape[:-1] + (1,), jnp.inf, sr.dtype)], -1)
    perm_ext = jnp.concatenate([perm, jnp.full(perm.shape[:-1] + (1,), V, perm.dtype)], -1)

    def before(m):
        kr = jnp.take_along_axis(sr_ext, m[..., None], axis=-1)
        ki = jnp.take_along_axis(perm_ext, m[..., None], axis=-1)
        return (r < kr) | ((r == kr) & (iota < ki))

    return perm, before


# ----------------------------------------------------------------------------------------------
# Q(all drafts in a prefix) for each scheme
# ----------------------------------------------------------------------------------------------


def _iid_prefix_all_in(qs, n):
    """``Q_m = q(H_m)^n`` for every prefix ``m = 1..V`` of the sorted draft probabilities."""
    return _cumsum(qs) ** n


def _wor2_prefix_all_in(qs):
    """Exact ``n = 2`` without replacement: ``Q = q(H) - λ Σ_{i∈H} q_i/(1 - q_i)``.

    ``1 - q_i`` is formed as the mass of the other tokens (prefix before ``i`` plus suffix after
    ``i``), which keeps it accurate when ``q_i`` is close to one.
    """
    pre = _cumsum(qs)
    lam = _suffix_after(qs)
    before = jnp.concatenate([jnp.zeros_like(pre[..., :1]), pre[..., :-1]], -1)
    rest = before + lam
    odds = jnp.where(rest > 0, qs / jnp.where(rest > 0, rest, 1), 0)
    return jnp.clip(pre - lam * _cumsum(odds), 0, 1)


def _best_prefix(F):
    """``1 + min_m F_m`` over ``m = 0..V`` (``F_0 = 0``) and the smallest prefix size whose
    objective is within :func:`_tie_tol` of the minimum, for ``F[B, V]``."""
    F0 = jnp.concatenate([jnp.zeros_like(F[:, :1]), F], -1)
    lo = jnp.min(F0, axis=-1, keepdims=True)
    arg = jnp.argmax(F0 <= lo + _tie_tol(F.dtype), axis=-1).astype(jnp.int32)
    return 1 + lo[:, 0], arg


# ----------------------------------------------------------------------------------------------
# i.i.d. drafts: branch-and-bound over the threshold μ (no sort)
# ----------------------------------------------------------------------------------------------
#
# For i.i.d. drafts α* - 1 = min_H [p(H) - q(H)^n]. With the convex conjugate of Q ↦ Q^n on
# [0, 1], Q^n = max_{0 <= μ <= n} [μ Q - φ(μ)], φ(μ) = (n-1) (μ/n)^{n/(n-1)}, so
#
#     α* - 1 = min_{0 <= μ <= n} G(μ),   G(μ) = φ(μ) - F(μ),   F(μ) = Σ_i (μ q_i - p_i)_+,
#
# and the threshold set H_μ = {p < μ q} attains F(μ), hence p(H_μ) - q(H_μ)^n <= G(μ): the value
# of a threshold set is an upper bound on α* - 1 and the best threshold set is optimal. Every
# pass evaluates P(μ) = p(H_μ) and Q(μ) = q(H_μ) at a few thresholds per row (one fused
# reduction over the vocabulary). Between two evaluated thresholds a < b, any set H with
# H_a ⊆ H ⊆ H_b adds tokens S of ratio in [a, b); with s = q(S), p(S) >= a s and
# p(S) >= ΔP - b (ΔQ - s), so p(H) - q(H)^n >= P_a + max(a s, ΔP - b ΔQ + b s) - (Q_a + s)^n,
# a concave function on each of two pieces: its minimum over s ∈ [0, ΔQ] is at 0, at the kink
# or at ΔQ. That lower bound prunes intervals; the two intervals with the smallest bounds are
# split at the minimiser of φ minus the chord of F (Kelley's cutting-plane point), or, when
# only one interval is open, at that point and at its mean ratio ΔP/ΔQ (which isolates a single
# heavy token in one step). It stops when no interval can improve on the best evaluated set by
# more than a tolerance.

#: First thresholds of the i.i.d. search as stationary masses s (μ = n s^{n-1}), the number of
#: thresholds added per pass, and the pass budget before the sort fallback.
_IID_FIRST, _IID_PER_PASS, _IID_MAX_PASSES = (0.5, 0.9, 1.0), 2, 40
#: Block length of the two-level summation over the vocabulary.
_SUM_BLOCK = 256


def _iid_tol(dtype) -> float:
    """Certified accuracy of the i.i.d. search: 16 ulp of one (plus summation rounding)."""
    return 16 * float(jnp.finfo(dtype).eps)


def _below(d):
    """``1.0`` where ``d > 0`` and ``0.0`` elsewhere, without a branch.

    XLA's CPU code for ``where(p < μ q, ...)`` branches and is 3-5x slower on unpredictable
    masks; ``clip(d · 2^(emax-1), 0, 1)`` is exact for every normal ``d`` (and differs only for
    subnormal differences, i.e. tokens of probability below ~1e-30 in float32).
    """
    big = jnp.asarray(2.0 ** (jnp.finfo(d.dtype).maxexp - 2), d.dtype)
    return jnp.clip(d * big, 0, 1)


def _blocked(x):
    """``x[B, V]`` as ``[B, V/b, b]`` blocks (zero padded) so sums are two-level (accurate in
    float32: ~1e-8 relative at V = 152k instead of ~1e-5 for one running sum)."""
    B, V = x.shape
    b = _SUM_BLOCK if V > 4 * _SUM_BLOCK else V
    pad = -V % b
    if pad:
        x = jnp.pad(x, ((0, 0), (0, pad)))
    return x.reshape(B, -1, b)


def _threshold_sums(p3, q3, mu):
    """``P[B, K], Q[B, K]``: masses of ``H = {p < μ_k q}`` under ``p`` and ``q`` for thresholds
    ``mu[B, K]``, from blocked ``p3, q3[B, R, b]`` in one fused pass."""
    K = mu.shape[1]
    terms = []
    for k in range(K):
        h = _below(mu[:, k, None, None] * q3 - p3)
        terms += [h * p3, h * q3]
    zero = jnp.zeros((), p3.dtype)
    sums = lax.reduce(tuple(terms), (zero,) * len(terms), lambda a, b: tuple(x + y for x, y in zip(a, b)), (2,))
    sums = [jnp.sum(s, -1) for s in sums]
    return jnp.stack(sums[0::2], 1), jnp.stack(sums[1::2], 1)


def _iid_intervals(mu, P, Q, n):
    """Lower bounds and split points for the intervals between sorted thresholds ``mu[B, M]``."""
    a, b = mu[:, :-1], mu[:, 1:]
    Pa, Qa = P[:, :-1], Q[:, :-1]
    dP = jnp.maximum(P[:, 1:] - Pa, 0)
    dQ = jnp.maximum(Q[:, 1:] - Qa, 0)
    w = b - a
    pos = w > 0
    ws = jnp.where(pos, w, 1)
    s = jnp.clip(jnp.where(pos, (b * dQ - dP) / ws, 0), 0, dQ)
    value = P - Q**n
    lb = jnp.minimum(Pa + a * s - (Qa + s) ** n, jnp.minimum(value[:, :-1], value[:, 1:]))
    inside = lambda x, other: jnp.where((x > a) & (x < b), x, other)  # noqa: E731
    mean = inside(jnp.where(dQ > 0, dP / jnp.where(dQ > 0, dQ, 1), 0), a + w / 2)
    mean = inside(mean, b)
    F = mu * Q - P
    slope = jnp.clip(jnp.where(pos, (F[:, 1:] - F[:, :-1]) / ws, 0), 0, 1)
    kelley = inside(n * slope ** (n - 1), mean)
    return lb, mean, kelley, value


def _iid_search(p, q, n):
    """α* for i.i.d. drafts (``n >= 2``) by branch-and-bound over the threshold.

    Returns ``(value, certificate, converged)`` for ``p, q[B, V]``; ``value`` is the exact
    objective of the returned threshold set and within :func:`_iid_tol` of α* where
    ``converged``.
    """
    B, V = p.shape
    dtype = p.dtype
    tol = _iid_tol(dtype)
    p3, q3 = _blocked(p), _blocked(q)
    # first thresholds at stationary masses Q = (μ/n)^{1/(n-1)} of 1/2, 0.9 and 1 (μ = n)
    grid = n * jnp.asarray(_IID_FIRST, dtype) ** (n - 1)
    mu1 = jnp.broadcast_to(grid, (B, len(_IID_FIRST)))
    P1, Q1 = _threshold_sums(p3, q3, mu1)
    pad = _IID_PER_PASS * _IID_MAX_PASSES
    zero = jnp.zeros((B, 1), dtype)

    def init(x):  # μ = 0 (empty set), the first pass, padding copies of μ = n
        return jnp.concatenate([zero, x, jnp.broadcast_to(x[:, -1:], (B, pad))], 1)

    state = (init(mu1), init(P1), init(Q1), jnp.int32(0))

    def open_intervals(mu, P, Q):
        lb, mean, kelley, value = _iid_intervals(mu, P, Q, n)
        best = jnp.min(value, 1, keepdims=True)
        return jnp.where(lb < best - tol, lb, jnp.inf), mean, kelley

    def cond(c):
        mu, P, Q, it = c
        return (it < _IID_MAX_PASSES) & jnp.any(jnp.isfinite(open_intervals(mu, P, Q)[0]))

    def body(c):
        mu, P, Q, it = c
        score, mean, kelley = open_intervals(mu, P, Q)
        # Kelley's point of the two most promising intervals; with only one open interval,
        # its Kelley point and its mean ratio
        _, j = lax.top_k(-score, 2)
        at = lambda x, col: jnp.take_along_axis(x, j[:, col:col + 1], 1)  # noqa: E731
        second = jnp.where(jnp.isfinite(at(score, 1)), at(kelley, 1), at(mean, 0))
        new = jnp.concatenate([at(kelley, 0), second], 1)
        new = jnp.where(jnp.isfinite(at(score, 0)), new, mu[:, -1:])
        Pn, Qn = _threshold_sums(p3, q3, new)
        k = _IID_PER_PASS
        mu, P, Q = (jnp.concatenate([x[:, :-k], y], 1) for x, y in ((mu, new), (P, Pn), (Q, Qn)))
        mu, P, Q = lax.sort((mu, P, Q), dimension=1, num_keys=1)
        return mu, P, Q, it + 1

    mu, P, Q, _ = lax.while_loop(cond, body, state)
    score, _, _ = open_intervals(mu, P, Q)
    value = P - Q**n
    k = jnp.argmin(value, 1)[:, None]
    best_mu = jnp.take_along_axis(mu, k, 1)
    H = _below(best_mu * q - p) > 0
    return 1 + jnp.take_along_axis(value, k, 1)[:, 0], H, ~jnp.any(jnp.isfinite(score), 1)


# ----------------------------------------------------------------------------------------------
# the jitted core
# ----------------------------------------------------------------------------------------------


def _greedy_top_mask(q, n):
    """Mask of the n - 1 most likely tokens of each row of ``q[B, V]`` (ties: lower id)."""
    B, V = q.shape
    if n <= 1:
        return jnp.zeros(q.shape, bool)
    _, top = lax.top_k(q, n - 1)
    return jnp.any(jnp.arange(V)[None, None, :] == top[:, :, None], axis=1)


def _greedy_core(p, q, n):
    T = _greedy_top_mask(q, n)
    rest = jnp.where(T, 0, q)
    Z = jnp.sum(rest, -1, keepdims=True)
    qp = rest / jnp.where(Z > 0, Z, 1)
    H = T | (p < qp)
    value = jnp.sum(jnp.where(T, p, jnp.minimum(p, qp)), -1)
    return value, H


@functools.partial(jax.jit, static_argnames=("n", "scheme", "num_nodes"))
def _optimal_core(p, q, n, scheme, num_nodes):
    """α* and certificate for flat ``p, q[B, V]`` (no validation)."""
    if scheme == "greedy":
        return _greedy_core(p, q, n)
    if n == 1:  # one draft: α* = Σ min(p, q) = 1 - TV(p, q), H = {p < q}
        H = _below(q - p) > 0
        return jnp.sum(jnp.minimum(p, q), -1), H
    if scheme == "iid":
        value, H, ok = _iid_search(p, q, n)
        # not certified within the pass budget (never seen in the tests): exact sort instead
        return lax.cond(jnp.all(ok), lambda: (value, H), lambda: _sorted_core(p, q, n, scheme, num_nodes))
    return _sorted_core(p, q, n, scheme, num_nodes)


#: Most row groups a large without-replacement batch is cut into (see :func:`_sorted_core`).
_MAX_ROW_GROUPS = 4


def _row_groups(B: int, V: int, n: int, scheme: str) -> int:
    """Independent row groups for the sort-based paths: XLA's CPU runtime runs independent
    computations on separate threads, while one sort or one sequential scan runs on one
    (measured at V = 152,064, batch 64, 2 cores, without replacement n = 8: 0.98 s in one
    group, 0.72 s in two). Only for drafts without replacement at large vocabularies, where it
    pays for the longer compilation."""
    if scheme != "without_replacement" or n < 2 or V < _BLOCKED_MIN_V:
        return 1
    return max(1, min(B, os.cpu_count() or 1, _MAX_ROW_GROUPS))


def _sorted_core(p, q, n, scheme, num_nodes):
    """α* and certificate by one sort by ``p/q`` and a search over prefixes (rows in
    :func:`_row_groups` independent groups)."""
    B, V = p.shape
    groups = _row_groups(B, V, n, scheme)
    if groups > 1:
        cuts = [B * g // groups for g in range(groups + 1)]
        parts = [_sorted_group(p[a:b], q[a:b], n, scheme, num_nodes) for a, b in zip(cuts[:-1], cuts[1:])]
        return jnp.concatenate([v for v, _ in parts]), jnp.concatenate([H for _, H in parts])
    return _sorted_group(p, q, n, scheme, num_nodes)


def _sorted_group(p, q, n, scheme, num_nodes):
    perm, before = _sort_by_ratio(_ratios(p, q))
    # one gather of the stacked pair is ~2x faster on CPU than two gathers
    pqs = jnp.take_along_axis(jnp.stack([p, q], -1), perm[..., None], -2)
    ps, qs = pqs[..., 0], pqs[..., 1]
    if scheme == "iid" or n == 1:
        value, m = _best_prefix(_cumsum(ps) - _iid_prefix_all_in(qs, n))
    elif n == 2:
        value, m = _best_prefix(_cumsum(ps) - _wor2_prefix_all_in(qs))
    else:
        K = num_nodes or _default_nodes(q.dtype)
        value, m = _wor_best(ps, qs, n, K)
    return value, before(m)


def optimal_acceptance(p, q, n: int, scheme: Union[str, DraftScheme] = "iid", *,
                       num_nodes: int | None = None) -> OptimalAcceptance:
    r"""Optimal acceptance rate α* of any lossless verifier for ``n`` drafts from ``q``.

    By duality of the optimal-transport LP (Hu et al. 2025),

    .. math::

        \alpha^*(p, Q) = \min_{H \subseteq [V]} \Big[\, p(H) + 1 - Q(x_1, \dots, x_n \in H) \Big],

    and for the set-law families below (``scheme.family`` of the draft scheme, so e.g.
    SpecHub's ``"hub"`` scheme, whose draft set has the greedy ``n = 2`` law, is bounded as
    ``"greedy"``) an optimal ``H`` is a prefix of the tokens sorted by :math:`p(x)/q(x)`
    ascending (tokens with :math:`q(x) = 0` last), so

    .. math::

        \alpha^* = \min_{0 \le m \le V} \big[\, P_m + 1 - Q(\text{all drafts} \in H_m) \big],
        \qquad P_m = p(H_m).

    * ``"iid"``: :math:`Q(\cdot \in H) = q(H)^n`. Optimal sets are threshold sets
      :math:`\{p < \mu q\}` and, with :math:`\varphi(\mu) = (n-1)(\mu/n)^{n/(n-1)}` the
      convex conjugate of :math:`Q^n` on :math:`[0, 1]`,

      .. math::

          \alpha^* = 1 + \min_{0 \le \mu \le n} \Big[\varphi(\mu)
              - \sum_x \big(\mu q(x) - p(x)\big)_+\Big].

      Instead of sorting, a branch-and-bound over :math:`\mu` evaluates
      :math:`p(\{p < \mu q\})` and :math:`q(\{p < \mu q\})` at two thresholds per pass (one
      fused pass over the vocabulary), bounds every interval between evaluated thresholds from
      below, and stops when no interval can beat the best evaluated set by more than 16 ulp of
      one; typically 3-10 passes, O(V) each. The returned value is the exact objective of the
      returned set (up to the rounding of its sums), so it is certified to 16 ulp; in the rare
      case that 40 passes do not certify a row, the batch falls back to the sort-and-scan
      below (exact, O(V log V)).
    * ``"without_replacement"``: ``n`` sequential draws without replacement (Gumbel-top-k);
      an optimal set is a prefix of the tokens sorted by :math:`p/q`.
      With :math:`\lambda = 1 - q(H)` and exponential arrival times of rate :math:`q_i`,

      .. math::

          Q(\text{all } n \in H) = \int_0^\infty \lambda e^{-\lambda t}\,
              P\big(N_H(t) \ge n\big)\, dt, \qquad
          N_H(t) \sim \text{PoissonBinomial}\big(1 - e^{-q_i t},\ i \in H\big),

      which equals THEORY §4's :math:`1 - \lambda\sum_{j<n}\int_0^\infty e^{-t} e_j(r(t))\,dt`
      (:math:`r_i = e^{q_i t} - 1`) because
      :math:`P(N_H(t) = j) = e^{-q(H)t} e_j(r(t))` and :math:`\lambda + q(H) = 1`.
      The prefix property is not proved for this scheme; it is checked against brute force
      over all subsets and against the LP (every tie order, ``V <= 7``) in the tests.
      The integral uses ``num_nodes`` Gauss–Legendre nodes in :math:`\log t` on
      :math:`[t_{lo}, T]`, with :math:`T` from the bound
      :math:`e_j(r(t)) \le t^j e^{S_j t}/j!` (:math:`S_j` the mass of the :math:`j` most
      likely draft tokens), typically a few tens. For ``V < 4096`` the truncated
      Poisson-binomial law is extended one token at a time along the prefix order (a
      ``lax.scan``, O(V · n · num_nodes), probabilities only, no overflow of :math:`e^{q t}`).
      For larger vocabularies the order is cut into blocks of 256 tokens: the light tokens of a
      block (:math:`q\,T \le 1.75/(n-1)`) enter through the power sums
      :math:`\sum x^m` of :math:`x = q\,T` (a truncated series for
      :math:`\sum_i (e^{q_i t} - 1)^k` and Newton's identities), at most 128 heavy tokens
      exactly, so the state is formed only at block ends; since :math:`Q(\cdot \in H)` is
      supermodular in :math:`H` (it sums nonnegative masses over subsets of :math:`H`), a
      block can beat its end only by its own target mass, and only blocks that might are
      scanned token by token. Where that does not certify a row (more heavy tokens than
      slots, or more than 96 such blocks) the whole batch takes the exact scan.
      ``n = 1`` and ``n = 2`` use the exact closed forms :math:`Q = q(H)` and
      :math:`Q = 1 - \lambda\big(1 + \sum_{i\in H} q_i/(1-q_i)\big)`.
      Accuracy (measured against enumeration and 128-node float64): float64 with the default
      64 nodes ≤ 1e-10 when the n-th largest draft probability is ≥ 1e-10; float32 with 24
      nodes ≈ 1e-7 on the blocked path (sums in blocks) and ≈ 1e-5 on the scan at
      V = 152,064 (its running sums).
    * ``"greedy"`` (Hu et al. 2025): the ``n - 1`` most likely tokens ``T`` of ``q`` (ties to
      the lower index) are drafted deterministically and the last draft comes from
      :math:`q' = q|_{V \setminus T}` renormalised; closed form
      :math:`\alpha^* = p(T) + \sum_{y \notin T} \min(p(y), q'(y))` with
      :math:`H = T \cup \{y \notin T : p(y) < q'(y)\}`.

    Args:
      p: target law, float[..., V].
      q: draft law, float[..., V]; leading axes broadcast against ``p``.
      n: number of drafts (static). Without replacement and greedy need
        ``n <= #{q > 0}`` in every row, and the scheme must draw ``n`` drafts
        (``scheme.supports(n, V)``).
      scheme: a :class:`spectheory.DraftScheme` or a registered name (static), dispatched on
        its ``family``: ``"iid"``, ``"without_replacement"`` or ``"greedy"``.
      num_nodes: quadrature nodes for the ``"without_replacement"`` family with ``n >= 3``
        (static); default 64 in float64 and 24 in float32.

    Returns:
      :class:`OptimalAcceptance` with ``value`` float[...] (NaN on a row whose traced ``p`` or
      ``q`` is not a law, or has fewer than ``n`` tokens of positive draft mass for the
      families drawing distinct tokens; its certificate is then meaningless) and
      ``certificate`` bool[..., V]: an optimal set (without replacement an optimal prefix: for ``V < 4096`` the smallest,
      prefixes within 16 ulp of the optimum counting as ties, for larger ``V`` the best block
      end or scanned prefix, the smaller one among exact ties; i.i.d. a threshold set within
      16 ulp of the optimum).

    Raises:
      ValueError: bad shapes, an unknown scheme or one whose ``family`` is ``None`` or
        unknown, an ``n`` the scheme does not draw; and (eager calls) NaN/negative entries,
        rows not summing to one, or ``n`` larger than the support of ``q`` for the families
        that draw distinct tokens.

    Example:
      >>> import jax.numpy as jnp
      >>> from spectheory.bounds import optimal_acceptance
      >>> p = jnp.array([0.5, 0.3, 0.2]); q = jnp.array([0.2, 0.3, 0.5])
      >>> round(float(optimal_acceptance(p, q, 1).value), 6)   # 1 - TV(p, q)
      0.7
      >>> res = optimal_acceptance(p, q, 2, "without_replacement")
      >>> round(float(res.value), 6), res.certificate.tolist()
      (0.985714, [False, True, True])
      >>> from spectheory.drafts import GREEDY, HUB  # scheme objects; the hub set law is greedy
      >>> float(optimal_acceptance(p, q, 2, HUB).value) == float(optimal_acceptance(p, q, 2, GREEDY).value)
      True

    References:
      Hu, Zheng, Viswanathan, Chen, Rossi, Wu, Manocha, Huang. Towards Optimal Multi-draft
      Speculative Decoding. ICLR 2025, arXiv:2502.18779.
      Sun, Suresh, Ro, Beirami, Jain, Yu. SpecTr: Fast Speculative Decoding via Optimal
      Transport. NeurIPS 2023, arXiv:2310.15141.
    """
    p, q, n, scheme, num_nodes = _validate(p, q, n, scheme, num_nodes)
    p, q, lead = _broadcast_pq(p, q)
    V = p.shape[-1]
    value, H = _optimal_core(p.reshape(-1, V), q.reshape(-1, V), n, scheme, num_nodes)
    value = value.reshape(lead)
    if any_traced(p, q):
        value = nan_where(_traced_ok(p, q, n, scheme), value)
    return OptimalAcceptance(value, H.reshape(lead + (V,)))


@functools.partial(jax.jit, static_argnames=("n", "scheme", "num_nodes"))
def _all_in_core(q, H, n, scheme, num_nodes):
    dtype = q.dtype
    inH = H.astype(bool)
    if scheme == "greedy":
        T = _greedy_top_mask(q, n)
        rest = jnp.where(T, 0, q)
        Z = jnp.sum(rest, -1)
        inner = jnp.sum(jnp.where(inH, rest, 0), -1) / jnp.where(Z > 0, Z, 1)
        return jnp.where(jnp.all(inH | ~T, -1), inner, 0)
    qH = jnp.where(inH, q, 0)
    if scheme == "iid" or n == 1:
        return jnp.sum(qH, -1) ** n
    lam = jnp.sum(jnp.where(inH, 0, q), -1)
    K = num_nodes or _default_nodes(dtype)
    t, wt, T = _race_nodes(q, n, K)

    def step(pi, qi):
        return _race_update(pi, -jnp.expm1(-qi[None, :] * t)), None

    pi, _ = lax.scan(step, _race_start(n, t.shape, dtype), qH.T)
    return _race_all_in(jnp.sum(pi, 0), lam, t, wt, T)


def all_in_probability(q, H, n: int, scheme: Union[str, DraftScheme] = "iid", *,
                       num_nodes: int | None = None) -> jax.Array:
    r"""Probability that all ``n`` drafts of a scheme lie in the token set ``H``.

    .. math::

        Q(x_1, \dots, x_n \in H) =
        \begin{cases}
          q(H)^n & \text{iid},\\
          \int_0^\infty \lambda e^{-\lambda t} P(N_H(t) \ge n)\,dt,\ \lambda = 1 - q(H)
            & \text{without replacement},\\
          [T \subseteq H]\; q'(H \setminus T) & \text{greedy}.
        \end{cases}

    With it, ``p(H) + 1 - all_in_probability(q, H, n, scheme)`` is an upper bound on α* for
    any ``H``, with equality at :func:`optimal_acceptance`'s certificate. Without replacement
    (``n >= 2``) it uses the quadrature of :func:`optimal_acceptance`, with the same accuracy,
    as an order-free product over the tokens of ``H``.

    Args:
      q: draft law, float[..., V].
      H: token set, bool[..., V] (broadcast against ``q``).
      n: number of drafts (static).
      scheme: a :class:`spectheory.DraftScheme` or a registered name (static), dispatched on
        its ``family``: ``"iid"``, ``"without_replacement"`` or ``"greedy"``.
      num_nodes: quadrature nodes for the ``"without_replacement"`` family (static).

    Returns:
      float[...] probabilities (NaN where a traced ``q`` is invalid, as in
      :func:`optimal_acceptance`).

    Raises:
      ValueError: as :func:`optimal_acceptance` (unknown scheme or family, bad ``n``), or an
        ``H`` whose last axis is not ``V`` or whose dtype is not bool.

    Example:
      >>> import jax.numpy as jnp
      >>> from spectheory.bounds import all_in_probability
      >>> q = jnp.array([0.5, 0.25, 0.25]); H = jnp.array([True, True, False])
      >>> round(float(all_in_probability(q, H, 2)), 6)
      0.5625
      >>> # without replacement: .5 · (.25/.5) + .25 · (.5/.75)
      >>> round(float(all_in_probability(q, H, 2, "without_replacement")), 6)
      0.416667

    References:
      Hu et al. Towards Optimal Multi-draft Speculative Decoding. ICLR 2025, arXiv:2502.18779.
    """
    s, family = _resolve_family(scheme)
    q = as_probs(q, "q", ndim=None)
    Harr = jnp.asarray(H) if is_concrete(H) else H
    if Harr.ndim == 0 or Harr.shape[-1] != q.shape[-1]:
        raise ValueError(f"H: expected a mask with last axis {q.shape[-1]}, got shape {tuple(Harr.shape)}")
    if Harr.dtype != bool:
        raise ValueError(f"H: expected a bool mask, got dtype {Harr.dtype}")
    support = None if family == "iid" else _min_support(q)
    n = _check_family_n(s, family, n, q.shape[-1], support)
    num_nodes = _check_num_nodes(num_nodes)
    lead = jnp.broadcast_shapes(q.shape[:-1], Harr.shape[:-1])
    V = q.shape[-1]
    qf = jnp.broadcast_to(q.astype(jnp.result_type(q.dtype, jnp.float32)), lead + (V,)).reshape(-1, V)
    Hf = jnp.broadcast_to(Harr.astype(bool), lead + (V,)).reshape(-1, V)
    out = _all_in_core(qf, Hf, n, family, num_nodes).reshape(lead)
    if any_traced(q):
        out = nan_where(_traced_ok(None, qf, n, family).reshape(lead), out)
    return out
