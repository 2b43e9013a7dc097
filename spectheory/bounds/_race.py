"""Q(all n draws without replacement lie in H) by the exponential race, and the prefix scan for
α* without replacement (private).

Drafts drawn without replacement from ``q`` are the first ``n`` arrivals of independent
exponential clocks of rates ``q_i``. With ``λ = 1 - q(H)`` and ``N_H(t)`` the number of tokens of
``H`` that have arrived by time ``t`` (Poisson-binomial with success probabilities
``1 - e^{-q_i t}``),

    Q(all n in H) = ∫_0^∞ λ e^{-λt} P(N_H(t) ≥ n) dt.

:func:`_race_nodes` picks a Gauss–Legendre rule in ``log t`` per row, :func:`_race_all_in`
applies it to the truncated Poisson-binomial law ``π_j = P(N_H(t) = j)``, ``j < n``, which
:func:`_race_update` extends by one token. :func:`_wor_best` finds the best prefix of the ratio
order: an exact scan over all prefixes (:func:`_wor_scan_best`), or, for large vocabularies,
blocks of the order whose light tokens enter through power sums (:func:`_wor_blocked_best`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def _cumsum(x):
    return jnp.cumsum(x, axis=-1)


def _suffix_after(x):
    """``out[..., k] = sum(x[..., k+1:])`` (exclusive suffix sums, computed without cancellation)."""
    rev = _cumsum(x[..., ::-1])[..., ::-1]
    return jnp.concatenate([rev[..., 1:], jnp.zeros_like(rev[..., :1])], -1)


_GL_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _gauss_legendre(K: int):
    if K not in _GL_CACHE:
        _GL_CACHE[K] = np.polynomial.legendre.leggauss(K)
    return _GL_CACHE[K]


def _default_nodes(dtype) -> int:
    return 64 if jnp.dtype(dtype) == jnp.float64 else 24


def _top_values(x, k):
    """``lax.top_k(x, k)[0]`` behind an optimisation barrier: when the values are sliced, XLA's
    CPU compiler no longer recognises its top-k pattern and runs a full sort (measured at
    V = 152,064, batch 64: 2.1 s instead of 20 ms)."""
    return lax.optimization_barrier(lax.top_k(x, k)[0])


def _tail_cutoff(g, n, log_delta, s_lo, s_hi):
    """An ``s`` within ``(s_hi - s_lo) / 32^3`` above the smallest one in ``[s_lo, s_hi]`` with
    ``Σ_{j<n} g^{-(j+1)} P(Poisson(g e^s) <= j) <= e^{log_delta}``, for each entry of ``g[B]``.

    That sum bounds ``∫_T^∞ e^{-t} Σ_{j<n} e_j(r(t)) dt`` at ``T = e^s`` (see :func:`_race_nodes`)
    and decreases in ``s``. Three rounds of 33 grid points.
    """
    dtype = g.dtype
    i = jnp.arange(n, dtype=dtype)
    # Σ_{j=i}^{n-1} g^{-(j+1)}, in logs: coefficient of the Poisson term x^i e^{-x}/i!
    terms = -jnp.log(g)[:, None] * jnp.arange(1, n + 1, dtype=dtype)
    log_coef = jnp.stack([jax.nn.logsumexp(terms[:, k:], -1) for k in range(n)], -1)  # [B, n]
    lgam = jax.scipy.special.gammaln(i + 1)
    lo = jnp.full(g.shape, s_lo, dtype)
    hi = jnp.full(g.shape, s_hi, dtype)
    frac = jnp.linspace(0, 1, 33, dtype=dtype)
    for _ in range(3):
        s = lo[:, None] + (hi - lo)[:, None] * frac  # [B, 33]
        x = g[:, None, None] * jnp.exp(s)[..., None]
        log_tail = jax.nn.logsumexp(log_coef[:, None, :] - x + i * jnp.log(x) - lgam, -1)
        ok = (log_tail <= log_delta) | (frac == 1)
        k = jnp.argmax(ok, 1)[:, None]  # first grid point that passes (the last one if none)
        hi = jnp.take_along_axis(s, k, 1)[:, 0]
        lo = jnp.take_along_axis(s, jnp.maximum(k - 1, 0), 1)[:, 0]
    return hi


def _race_nodes(q, n, K):
    """Quadrature nodes for the exponential-race integral (one set per row of ``q[B, V]``).

    Returns ``t[K, B]`` (``K`` Gauss–Legendre nodes in ``s = log t`` on ``[log t_lo, log T]``),
    the weights ``wt[K, B]`` of ``dt`` (``ds`` weight times ``t``) and ``T[B]``; see
    :func:`_race_all_in` for the formula they serve.

    * ``t_lo = ((n+1)! δ)^{1/(n+1)}``: since ``P(N_H(t) ≥ n) ≤ t^n/n!`` the integral over
      ``[0, t_lo]`` is at most ``δ``.
    * ``T``: the integral over ``[T, ∞)`` equals ``e^{-λT}`` up to
      ``λ ∫_T^∞ e^{-λt} P(N_H(t) < n) dt = λ ∫_T^∞ e^{-t} Σ_{j<n} e_j(r(t)) dt``. Either bound
      makes that at most ``δ``-small, and ``T`` is the smaller of the two cutoffs:
      (a) ``T = L / q_(n)`` with ``q_(n)`` the n-th largest draft probability: either
      ``λ ≥ q_(n)`` or ``H`` holds the ``n`` most likely tokens (``P(N_H(t) < n) ≤ n e^{-q_(n) t}``);
      (b) with ``r_i = e^{q_i t} - 1 ≤ q_i t e^{q_i t}``, ``e_j(r) ≤ t^j e^{S_j t} / j!`` (``S_j``
      the mass of the ``j`` most likely tokens), so the integrand is at most
      ``e^{-g t} Σ_{j<n} t^j/j!`` with ``g = 1 - S_{n-1}`` and its tail integral is
      ``Σ_{j<n} g^{-(j+1)} P(Poisson(gT) ≤ j)`` — typically ``T`` of a few tens instead of thousands.
    """
    dtype = q.dtype
    f64 = jnp.dtype(dtype) == jnp.float64
    delta, L, s_cap = (1e-16, 40.0, 700.0) if f64 else (1e-8, 20.0, 80.0)
    s_lo = math.log(math.factorial(n + 1) * delta) / (n + 1)
    top = _top_values(q, n)
    qn = top[:, n - 1]
    tiny = jnp.finfo(dtype).tiny
    s_old = math.log(L) - jnp.log(jnp.maximum(qn, tiny))
    g = jnp.maximum(1 - jnp.sum(top[:, : n - 1], -1), jnp.maximum(qn, tiny))
    s_new = _tail_cutoff(g, n, math.log(delta), s_lo + 1.0, s_cap)
    s_hi = jnp.clip(jnp.minimum(s_old, s_new), s_lo + 1.0, s_cap)
    x, w = _gauss_legendre(K)
    x = jnp.asarray(x, dtype)[:, None]
    w = jnp.asarray(w, dtype)[:, None]
    half = (s_hi - s_lo)[None, :] / 2
    t = jnp.exp(s_lo + half * (x + 1))  # [K, B]
    return t, w * half * t, jnp.exp(s_hi)


def _race_start(n, shape, dtype):
    """The race state of the empty set, ``π[n, *shape]``: ``π_0 = 1``, ``π_j = 0`` for ``0 < j < n``."""
    return jnp.zeros((n,) + tuple(shape), dtype).at[0].set(1)


def _race_update(pi, b):
    """One token joins ``H``: Poisson-binomial update of ``pi[n, ...]``, ``π_j = P(N_H(t) = j)``
    for ``j < n``; ``b = 1 - e^{-q t}`` is the probability that the token has arrived by ``t``."""
    shifted = jnp.concatenate([jnp.zeros_like(pi[:1]), pi[:-1]], 0)
    return pi + b[None] * (shifted - pi)


def _race_update_tuple(pi, b):
    """:func:`_race_update` for a state held as a tuple of ``n`` arrays. In a loop, XLA's CPU code
    for one stacked state with a shifted copy was measured 7-17x slower than this once the state
    outgrew ~400 KB, and 2x faster below ~50 KB."""
    return (pi[0] - b * pi[0],) + tuple(pi[j] + b * (pi[j - 1] - pi[j]) for j in range(1, len(pi)))


def _race_all_in(S, lam, t, wt, T, axis=0):
    """``Q = ∫_0^∞ λ e^{-λt} P(N_H(t) ≥ n) dt ≈ e^{-λT} + ∫_{t_lo}^T λ e^{-λt} (1 - S(t)) dt``
    from ``S = P(N_H(t_k) < n)`` with the nodes ``t``, weights ``wt`` on ``axis`` (``[K, B]`` by
    default) and ``lam``, ``T`` without it (see :func:`_race_nodes` for the neglected pieces)."""
    lam_k = jnp.expand_dims(lam, axis)
    Q = jnp.exp(-lam * T) + jnp.sum(wt * lam_k * jnp.exp(-lam_k * t) * (1 - S), axis)
    return jnp.clip(Q, 0, 1)


def _wor_scan_best(ps, qs, n, K):
    """Scan the prefixes of the sorted laws ``ps, qs[B, V]`` for the smallest dual objective.

    Returns ``(best value, best prefix size)``, each ``[B]``; a later prefix must improve on the
    best so far by more than :func:`_tie_tol` to replace it.
    """
    B, V = qs.shape
    dtype = qs.dtype
    t, wt, T = _race_nodes(qs, n, K)
    P = _cumsum(ps)
    lam = _suffix_after(qs)
    pi0 = _race_start(n, t.shape, dtype)
    tol = _tie_tol(dtype)

    def step(carry, x):
        pi, best, arg, m = carry
        qm, lm, Pm = x
        b = -jnp.expm1(-qm[None, :] * t)
        pi = _race_update(pi, b)
        g = Pm + 1 - _race_all_in(jnp.sum(pi, 0), lm, t, wt, T)
        better = g < best - tol
        return (pi, jnp.where(better, g, best), jnp.where(better, m + 1, arg), m + 1), None

    init = (pi0, jnp.ones((B,), dtype), jnp.zeros((B,), jnp.int32), jnp.int32(0))
    (_, best, arg, _), _ = lax.scan(step, init, (qs.T, lam.T, P.T))
    return best, arg


def _tie_tol(dtype):
    """Objective differences below this are treated as ties (the smaller prefix wins)."""
    return 16 * float(jnp.finfo(dtype).eps)


# ----------------------------------------------------------------------------------------------
# large vocabularies: blocks of the ratio order, light tokens through power sums
# ----------------------------------------------------------------------------------------------
#
# The scan above costs O(V · n · K) sequential steps. For large V the sorted order is cut into
# blocks of c tokens and the race state is formed only at block ends:
#
# * a token is light when x = q T <= x0 = 1.75 / (n - 1) (T the quadrature's upper limit), heavy
#   otherwise (there are at most T / x0 of those; typically a few tens);
# * a block's light tokens enter through the power sums X_m = Σ x^m, m <= D: with τ = t / T and
#   r = e^{q t} - 1 = e^{x τ} - 1, Σ r^k = Σ_m k! S(m, k) τ^m X_m / m! (S: Stirling numbers of the
#   second kind), Newton's identities give e_j(r), j < n, and e^{-q(block) t} Σ_j e_j z^j is the
#   block's Poisson-binomial generating function. D = n - 1 + 11 (float32) or + 17 (float64)
#   keeps the truncated series below the rounding level (the neglected terms are about
#   (k x0 / 2)^{D-k+1} / (D-k+1)! relative to r^k);
# * heavy tokens are extra events (linear factors e^{-q t} + (1 - e^{-q t}) z) placed at their
#   position in the order, so the state after each block's event is exact for that prefix.
#
# Q(all in H) is supermodular in H for any draft law (it is a sum of nonnegative masses over the
# subsets of H), so for a prefix H between the block ends H_a ⊆ H ⊆ H_b,
# F(H) = p(H) + 1 - Q(H) >= p(H_a) + 1 - Q(H_b) = F(H_b) - p(block). Blocks whose bound is not
# above the best block end by more than the tie tolerance are scanned exactly, token by token,
# from their starting state (a few tens of blocks per row on LLM-like laws, all rows at once).
# If more than `rounds` x `R` blocks would be needed, or a row has more heavy tokens than slots,
# the caller falls back to the exact scan.

#: Tokens per block, heavy-token slots, blocks refined per round and rounds.
_BLOCK, _HEAVY, _REFINE, _ROUNDS = 256, 128, 32, 3
#: Blocked path for V >= this many tokens.
_BLOCKED_MIN_V = 16 * _BLOCK
#: (n - 1) x0: light tokens have q T <= x0.
_LIGHT_KX = 1.75


def _series_order(n, dtype) -> int:
    return n - 1 + (17 if jnp.dtype(dtype) == jnp.float64 else 11)


def _stirling_coeffs(n, D) -> np.ndarray:
    """``C[k-1, m-1] = k! S(m, k) / m!`` for ``k < n``, ``m <= D``: ``(e^x - 1)^k = Σ_m C x^m``."""
    S = np.zeros((D + 1, n))
    S[0, 0] = 1.0
    for m in range(1, D + 1):
        for k in range(1, n):
            S[m, k] = k * S[m - 1, k] + S[m - 1, k - 1]
    C = np.zeros((n - 1, D))
    for k in range(1, n):
        for m in range(k, D + 1):
            C[k - 1, m - 1] = math.factorial(k) * S[m, k] / math.factorial(m)
    return C


def _truncated_product(a, f):
    """Coefficients ``z^0..z^{n-1}`` of the product of ``a`` and ``f`` (tuples of ``n`` arrays)."""
    return tuple(sum(a[i] * f[j - i] for i in range(j + 1)) for j in range(len(a)))


def _race_objective(S, P, lam, t, wt, T):
    """``F = P + 1 - Q`` from ``S[..., K] = P(N_H(t_k) < n)`` (nodes on the last axis)."""
    return P + 1 - _race_all_in(S, lam, t, wt, T, axis=-1)


def _wor_blocked_best(ps, qs, n, K, c=_BLOCK, kh=_HEAVY, R=_REFINE, rounds=_ROUNDS):
    """Best prefix of the sorted laws ``ps, qs[B, V]`` by blocks (see the comment above).

    Returns ``(best value, best prefix size, certified)``, each ``[B]``; where ``certified`` is
    false the caller must use :func:`_wor_scan_best` (with too few rounds the value is an
    attained upper bound; with more heavy tokens than ``kh`` slots it is meaningless).
    """
    B, V = qs.shape
    dtype = qs.dtype
    tol = _tie_tol(dtype)
    nb = -(-V // c)
    if nb * c > V:  # zero tokens at the end change no prefix objective
        ps = jnp.pad(ps, ((0, 0), (0, nb * c - V)))
        qs = jnp.pad(qs, ((0, 0), (0, nb * c - V)))
    Vp = nb * c
    kh, R = min(kh, Vp), min(R, nb)
    t, wt, T = _race_nodes(qs, n, K)
    t, wt = t.T, wt.T  # [B, K]
    tau = t / T[:, None]
    D = _series_order(n, dtype)

    # heavy tokens: the first kh positions with x > x0 (ascending), absent slots at position Vp
    x = qs * T[:, None]
    light = x <= _LIGHT_KX / (n - 1)
    iota = lax.broadcasted_iota(dtype, (B, Vp), 1)
    hkey = _top_values(jnp.where(light, 0, Vp - iota), min(kh + 1, Vp))
    fits = hkey[:, kh] == 0 if kh < Vp else jnp.ones((B,), bool)
    hval = hkey[:, :kh] > 0
    hpos = jnp.where(hval, Vp - hkey[:, :kh], Vp).astype(jnp.int32)
    hq = jnp.where(hval, jnp.take_along_axis(qs, jnp.minimum(hpos, Vp - 1), 1), 0)

    # light power sums per block, X[B, nb, D]
    xl = jnp.where(light, x, 0).reshape(B, nb, c)
    pw = [xl]
    for _ in range(D - 1):
        pw.append(pw[-1] * xl)
    zero = jnp.zeros((), dtype)
    X = jnp.stack(lax.reduce(tuple(pw), (zero,) * D, lambda u, v: tuple(a + b for a, b in zip(u, v)), (2,)), -1)

    # events in order: heavy token h at 2 hpos, end of block b at 2 (b + 1) c - 1
    E = kh + nb
    bend = 2 * (jnp.arange(nb, dtype=jnp.int32) + 1) * c - 1
    order = jnp.argsort(jnp.concatenate([2 * hpos, jnp.broadcast_to(bend, (B, nb))], 1), axis=1)  # [B, E]
    inv = jnp.argsort(order, axis=1)
    ev = lambda a: jnp.take_along_axis(a, order, 1)  # noqa: E731
    Xe = jnp.take_along_axis(jnp.concatenate([jnp.zeros((B, kh, D), dtype), X], 1), order[..., None], 1)
    qe = ev(jnp.concatenate([hq, jnp.zeros((B, nb), dtype)], 1))  # [B, E]
    pb = jnp.sum(ps.reshape(B, nb, c), -1)
    qb = jnp.sum(qs.reshape(B, nb, c), -1)
    Pend = jnp.cumsum(pb, 1)
    lam_end = jnp.maximum(jnp.flip(jnp.cumsum(jnp.flip(qb, 1), 1), 1) - qb, 0)
    Pe = ev(jnp.concatenate([jnp.zeros((B, kh), dtype), Pend], 1))
    Le = ev(jnp.concatenate([jnp.ones((B, kh), dtype), lam_end], 1))
    is_end = ev(jnp.concatenate([jnp.zeros((B, kh), bool), jnp.ones((B, nb), bool)], 1))

    # event factors [E, n, B, K]: light block part (Newton) times the heavy token's linear factor
    C = jnp.asarray(_stirling_coeffs(n, D), dtype)  # [n-1, D]
    taup = tau[:, None, :] ** jnp.arange(1, D + 1, dtype=dtype)[None, :, None]  # [B, D, K]
    W = jnp.einsum("km,bmK->bmkK", C, taup).reshape(B, D, (n - 1) * K)
    Pk = jnp.matmul(Xe, W).reshape(B, E, n - 1, K)  # power sums of r over the block's light tokens
    e = [jnp.ones((B, E, K), dtype)]
    for j in range(1, n):
        acc = Pk[:, :, 0] * e[j - 1]
        for i in range(2, j + 1):
            acc = acc + (1 if i % 2 else -1) * Pk[:, :, i - 1] * e[j - i]
        e.append(acc / j)
    damp = jnp.exp(-tau[:, None, :] * Xe[:, :, :1])  # e^{-q(light part) t}
    stay = jnp.exp(-qe[..., None] * t[:, None, :])  # heavy: e^{-q t}; 1 for block events
    f = [e[0] * damp * stay] + [(e[j] * stay + e[j - 1] * (1 - stay)) * damp for j in range(1, n)]
    f = jnp.transpose(jnp.stack(f, 0), (2, 0, 1, 3))  # [E, n, B, K]

    pi0 = tuple(_race_start(n, (B, K), dtype))

    def step(pi, fe):
        pi = _truncated_product(pi, tuple(fe[j] for j in range(n)))
        return pi, pi

    _, states = lax.scan(step, pi0, f)  # n arrays [E, B, K]: the state after each event
    Fe = jnp.where(is_end.T, _race_objective(sum(states), Pe.T, Le.T, t, wt, T), jnp.inf)
    bpos = inv[:, kh:]  # [B, nb] place of each block's end event
    Fb = jnp.take_along_axis(Fe.T, bpos, 1)
    lb = Fb - pb
    kb = jnp.argmin(Fb, 1)
    best = jnp.minimum(jnp.min(Fb, 1), 1.0)  # F(empty set) = 1
    bm = jnp.where(jnp.min(Fb, 1) < 1.0, (kb + 1) * c, 0).astype(jnp.int32)

    # exact scan of the blocks that might hold a better prefix, R blocks per row per round
    qb3, pb3 = qs.reshape(B, nb, c), ps.reshape(B, nb, c)
    tR, wtR = t[None], wt[None]  # [1, B, K]

    def open_blocks(best, done):
        return jnp.where((lb < best[:, None] - tol) & ~done, lb, jnp.inf)

    def refine(carry):
        best, bm, done, it = carry
        neg, sel = lax.optimization_barrier(lax.top_k(-open_blocks(best, done), R))  # [B, R]
        valid = jnp.isfinite(neg)
        prev = jnp.maximum(sel - 1, 0)
        at = jnp.take_along_axis(bpos, prev, 1).T[..., None]  # [R, B, 1]
        first = (sel.T == 0)[..., None]
        start = tuple(jnp.where(first, z[None], jnp.take_along_axis(st, at, 0)) for z, st in zip(pi0, states))
        qq = jnp.take_along_axis(qb3, sel[..., None], 1)  # [B, R, c]
        pp = jnp.take_along_axis(pb3, sel[..., None], 1)
        P0 = jnp.where(sel > 0, jnp.take_along_axis(Pend, prev, 1), 0)
        Pm = P0[..., None] + jnp.cumsum(pp, -1)
        lam = jnp.take_along_axis(lam_end, sel, 1)[..., None] + jnp.flip(jnp.cumsum(jnp.flip(qq, -1), -1), -1) - qq
        tr = lambda a: jnp.transpose(a, (2, 1, 0))  # noqa: E731  [c, R, B]

        arrive = -jnp.expm1(-tr(qq)[..., None] * tR)  # [c, R, B, K], outside the sequential loop

        def tok(pi, b):
            pi = _race_update_tuple(pi, b)
            return pi, sum(pi)

        _, S = lax.scan(tok, start, arrive)  # S[c, R, B, K] = P(N < n)
        F = _race_objective(S, tr(Pm), tr(lam), tR, wtR, T)  # [c, R, B]
        F = jnp.where(valid.T[None], F, jnp.inf).transpose(2, 1, 0).reshape(B, R * c)
        k = jnp.argmin(F, 1)
        v = jnp.min(F, 1)
        m = (jnp.take_along_axis(sel, (k // c)[:, None], 1)[:, 0] * c + k % c + 1).astype(jnp.int32)
        better = (v < best) | ((v == best) & (m < bm))
        done = done | jnp.any((jnp.arange(nb)[None, None, :] == sel[..., None]) & valid[..., None], 1)
        return jnp.where(better, v, best), jnp.where(better, m, bm), done, it + 1

    def more(carry):
        best, _, done, it = carry
        return (it < rounds) & jnp.any(jnp.isfinite(open_blocks(best, done)))

    best, bm, done, _ = lax.while_loop(more, refine, (best, bm, jnp.zeros((B, nb), bool), 0))
    certified = fits & ~jnp.any(jnp.isfinite(open_blocks(best, done)), 1)
    return best, jnp.minimum(bm, V), certified


def _wor_best(ps, qs, n, K):
    """``(best value, best prefix size)`` over the prefixes of the sorted laws ``ps, qs[B, V]``:
    the blocked path for large vocabularies (exact scan where it does not certify a row)."""
    V = qs.shape[1]
    if not _BLOCKED_MIN_V <= V < 2**24 - _BLOCK:  # token positions must be exact floats
        return _wor_scan_best(ps, qs, n, K)
    value, m, ok = _wor_blocked_best(ps, qs, n, K)
    return lax.cond(jnp.all(ok), lambda: (value, m), lambda: _wor_scan_best(ps, qs, n, K))
