"""A conformance check other projects can run on their own verifiers."""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _core
from spectheory import _validation as _v
from spectheory._registry import DraftScheme, Rule, VerifyResult, make_verifier
from spectheory.audit import _power
from spectheory.audit._chi_square import ChiSquareResult, controlled_test, planned_test
from spectheory.drafts import IID, scheme as _scheme


class LosslessReport(NamedTuple):
    """Result of :func:`check_lossless`.

    Attributes:
      passed: every check that ran passed.
      exact_error: ``max_y |sum_x Q(x) K(y|x) - p(y)|`` when a kernel was given, else ``None``.
      chi_square: the chi-squared test of the sampled tokens against ``p`` (with its
        ``detectable_tv`` and the rate of its negative control).
      output_estimate: empirical law of the emitted tokens, float[V].
      detectable_tv: what the statistical part can see: an emitted law at total variation
        ``>= detectable_tv`` from ``p`` fails the chi-squared test with probability ``>= 0.99``
        (``chi_square.detectable_tv``). The exact check, when a kernel is given, sees any
        error above ``exact_tol`` in the kernel itself.
    """

    passed: bool
    exact_error: Optional[float]
    chi_square: ChiSquareResult
    output_estimate: np.ndarray
    detectable_tv: float


def _token(out):
    if isinstance(out, VerifyResult) or hasattr(out, "token"):
        return out.token
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


def _resolve_law(drafts, q, n):
    if isinstance(drafts, str):
        drafts = _scheme(drafts)
    if isinstance(drafts, DraftScheme):
        return drafts.law(q, n)
    tuples, probs = drafts
    return np.asarray(tuples), np.asarray(probs, dtype=np.float64)


def check_lossless(fn: Callable, p, q, n: int, *, drafts="iid", noise="key", kernel: Optional[Callable] = None,
                   num_samples: int = 20_000, alpha: float = 1e-3, seed: int = 0, exact_tol: float = 1e-10,
                   vectorized: Optional[bool] = None, raise_on_failure: bool = True) -> LosslessReport:
    r"""Check that a verifier ``fn`` emits exactly the target law ``p``.

    The drafts are drawn from their exact law (``drafts``: a draft-scheme name such as
    ``"iid"``, a :class:`spectheory.DraftScheme`, or an explicit ``(tuples int[M, n],
    probs float[M])``), ``fn`` is run ``num_samples`` times on fresh noise, and the emitted
    tokens are tested against ``p`` with Pearson's chi-squared test at level ``alpha``:

    .. math:: \sum_{\bar x} Q(\bar x)\, K(y \mid \bar x) \overset{?}{=} p(y).

    If ``kernel(p, q, drafts) -> float[V]`` is given, the exact mixture is also enumerated and
    must match ``p`` within ``exact_tol``.

    The report states what the statistical part can see (``detectable_tv``: an emitted law at
    that total variation from ``p`` or more fails with probability ``>= 0.99``;
    :mod:`spectheory.audit._power`). Before ``fn`` runs, a ``num_samples`` too small to see a
    deviation of total variation 0.5 is refused; after, a built-in negative control (the same
    test on 200 seeded samples of the same size from a law at the stated detectable TV) must
    reject, else the check raises rather than report a powerless pass.

    Args:
      fn: the verifier, ``fn(noise, p, q, drafts)`` returning a token id, a
        :class:`spectheory.VerifyResult`, or a tuple whose first item is the token. ``noise`` is
        a ``jax.random`` key when ``noise="key"``, or a float array of ``noise`` uniforms in
        [0, 1) when ``noise`` is an int. It may be a JAX function (vectorised with ``vmap``) or
        any Python function of NumPy arrays (called in a loop).
      p: target law, float[V]. q: draft law, float[V]. n: number of drafts.
      drafts: the draft law ``fn`` assumes.
      noise: ``"key"`` or the number of uniforms ``fn`` consumes.
      kernel: optional exact kernel of ``fn``.
      num_samples: number of runs, an int. At ``alpha = 1e-3`` a uniform ``p`` needs at least
        41 runs at V = 2 and 60 at V = 10; the default 20,000 sees a TV of 0.023 at V = 2 and
        0.027 at V = 10.
      alpha: significance level in ``(0, 1)``.
      seed: an int ``>= 0``; fixes drafts, noise and the negative control.
      exact_tol: tolerance of the exact check.
      vectorized: force (``True``) or forbid (``False``) ``jax.vmap``; ``None`` tries it first.
      raise_on_failure: raise ``AssertionError`` when a check fails (for use in test suites).

    Returns:
      :class:`LosslessReport`.

    Raises:
      ValueError: naming ``num_samples`` (not an int ``>= 1``, too few to see a deviation of
        TV 0.5, or a failed negative control), ``p``, ``q``, ``n``, ``drafts``, ``noise``, ``alpha`` or ``seed``.
      AssertionError: when a check fails and ``raise_on_failure`` is true.

    References:
      Leviathan et al. 2023 (arXiv 2211.17192); Sun et al., SpecTr (arXiv 2310.15141).
    """
    _v.check_callable(fn, "fn")
    with jax.enable_x64(True):
        p64 = np.asarray(_v.as_probs(np.asarray(p, dtype=np.float64), "p"))
        q64 = np.asarray(_v.as_probs(np.asarray(q, dtype=np.float64), "q"))
        V = _v.same_vocab(p64, q64)
        n = _v.check_n(n)
        num_samples = _v.check_count(num_samples, "num_samples")
        seed = _v.check_count(seed, "seed", minimum=0)
        alpha = _power.check_alpha(alpha)
        plan = planned_test(p64 / p64.sum(), num_samples, alpha)  # before fn runs
        tuples, probs = _resolve_law(drafts, q64, n)
        if tuples.ndim != 2 or tuples.shape[1] != n or probs.shape != (tuples.shape[0],):
            raise ValueError("drafts: expected a law (tuples int[M, n], probs float[M])")
        _v.as_tokens(tuples, "drafts (tuples)", V, ndim=2, length=n)
        probs = np.asarray(_v.as_probs(probs, "drafts (probs)"), dtype=np.float64)
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(probs), size=num_samples, p=probs / probs.sum())
        draft_batch = tuples[picks].astype(np.int32)
        if noise == "key":
            noise_batch = jax.random.split(jax.random.key(seed), num_samples)
        elif isinstance(noise, (int, np.integer)) and not isinstance(noise, bool) and noise >= 0:
            noise_batch = rng.random((num_samples, int(noise)))
        else:
            raise ValueError(f"noise: expected 'key' or a non-negative int, got {noise!r}")

        tokens = None
        if vectorized is not False:
            try:
                run = jax.jit(jax.vmap(lambda u, d: _token(fn(u, jnp.asarray(p64), jnp.asarray(q64), d))))
                tokens = np.asarray(run(noise_batch if noise == "key" else jnp.asarray(noise_batch),
                                        jnp.asarray(draft_batch)))
            except Exception:
                if vectorized:
                    raise
                tokens = None
        if tokens is None:
            tokens = np.array([int(np.asarray(_token(fn(noise_batch[i], p64, q64, draft_batch[i]))))
                               for i in range(num_samples)])
        tokens = tokens.reshape(-1).astype(np.int64)
        if tokens.min() < 0 or tokens.max() >= V:
            raise AssertionError(f"check_lossless: fn emitted a token outside [0, {V})")
        chi = controlled_test(tokens, p64 / p64.sum(), plan, np.random.default_rng([seed, 1]))
        estimate = np.bincount(tokens, minlength=V) / num_samples

        exact_error = None
        if kernel is not None:
            K = np.stack([np.asarray(kernel(p64, q64, t), dtype=np.float64) for t in tuples])
            exact_error = float(np.max(np.abs(probs @ K - p64)))

    passed = chi.passed and (exact_error is None or exact_error <= exact_tol)
    report = LosslessReport(passed, exact_error, chi, estimate, chi.detectable_tv)
    if raise_on_failure and not passed:
        worst = int(np.argmax(np.abs(estimate - p64)))
        msg = [f"check_lossless: the verifier is not lossless for n={n}"]
        if exact_error is not None and exact_error > exact_tol:
            msg.append(f"exact mixture differs from p by {exact_error:.3g} > {exact_tol:g}")
        if not chi.passed:
            msg.append(f"chi-squared p-value {chi.p_value:.3g} <= alpha={alpha:g} (statistic {chi.statistic:.4g}, dof {chi.dof}, "
                       f"detectable TV {chi.detectable_tv:.3g})")
        msg.append(f"largest deviation at token {worst}: emitted {estimate[worst]:.4f} vs p {p64[worst]:.4f}")
        raise AssertionError("; ".join(msg))
    return report


# --- a deliberately wrong multi-draft verifier, for demonstrating the audits -----------------

@jax.jit
def _naive_core(u, p, q, drafts) -> VerifyResult:
    r"""The WRONG rule with explicit noise: every candidate tested on its own.

    Candidate :math:`x_j` passes iff :math:`u_{j-1}\, q(x_j) < p(x_j)` (the single-draft
    test, with the *same* target ``p`` for every candidate); the first passing candidate is
    emitted, else the inverse-CDF draw with :math:`u_n` from :math:`\mathrm{norm}((p - q)_+)`.
    Lossless only for ``n = 1``: for ``n >= 2`` a token with :math:`p < q` gets several chances.

    Args:
      u: float[n + 1]. p, q: float[V]. drafts: int[n].

    >>> import jax.numpy as jnp
    >>> p, q = jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0])
    >>> int(naive_independent_verifier.verify_with_uniforms(jnp.array([0.2, 0.9, 0.5]), p, q, jnp.array([0, 0])).token)
    0
    """
    n = drafts.shape[0]
    ok = _core.accepts(u[:n], p[drafts], q[drafts])
    first = jnp.argmax(ok)
    any_ok = jnp.any(ok)
    y = _core.sample_index(u[n], _core.residual_weights(p, q))
    return VerifyResult(jnp.where(any_ok, drafts[first], y).astype(jnp.int32),
                        jnp.where(any_ok, first, -1).astype(jnp.int32))


@jax.jit
def _naive_kernel(p, q, drafts) -> jax.Array:
    r"""Exact law of the WRONG rule's token given the drafts.

    .. math::
        K(y \mid \bar x) = \sum_j \Big[\prod_{i<j}(1 - a_i)\Big] a_j\,\delta_{x_j}(y)
        + \Big[\prod_j (1 - a_j)\Big]\,\mathrm{norm}\big((p - q)_+\big)(y),
        \qquad a_j = \min\big(1, p(x_j)/q(x_j)\big).

    >>> import jax.numpy as jnp  # two drafts of token 0 with p(0) = 0.5 < q(0) = 1: 0.75 > p(0)
    >>> naive_independent_verifier.kernel(jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0]), jnp.array([0, 0])).tolist()
    [0.75, 0.25]
    """
    a = _core.accept_prob(p[drafts], q[drafts])
    before = jnp.concatenate([jnp.ones((1,), p.dtype), jnp.cumprod(1 - a)])
    first = before[:-1] * a
    K = jnp.zeros_like(p).at[drafts].add(first)
    return K + before[-1] * _core.normalize(_core.residual_weights(p, q))


naive_independent_verifier = make_verifier(_naive_core, _naive_kernel, lambda n: n + 1, name="naive-independent")
"""A deliberately WRONG verifier: it tests each i.i.d. candidate independently with the
single-draft probability ``min(1, p(x)/q(x))`` and falls back to ``norm((p - q)+)``. It is
lossless only for ``n = 1``; for ``n >= 2`` it over-emits tokens with ``p < q``. Use it to see
:func:`check_lossless` and :func:`spectheory.audit.exact` fail."""

naive_independent_rule = Rule("naive-independent", IID, naive_independent_verifier,
                              description="WRONG: independent single-draft tests (not lossless)")
"""The unregistered :class:`spectheory.Rule` pairing :data:`naive_independent_verifier` with
i.i.d. drafts."""
