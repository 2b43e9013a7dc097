"""Statistical audits: chi-squared goodness of fit of a sampler against an exact law."""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from spectheory import _validation as _v
from spectheory._registry import Rule
from spectheory._registry import as_rule as _as_rule
from spectheory.audit import _power
from spectheory.audit._exact import kernel_table


class ChiSquareResult(NamedTuple):
    """Outcome of a chi-squared goodness-of-fit test.

    Attributes:
      statistic: Pearson's statistic after pooling sparse bins (``inf`` if a sample fell
        where the law has zero mass; 0 for the support check of a one-point law).
      dof: degrees of freedom (number of pooled bins minus one; 0 for a one-point law, where
        the test is the support check alone).
      p_value: upper-tail probability of ``statistic``.
      alpha: the stated significance level.
      passed: ``p_value > alpha``.
      counts: observed counts per token, int[V].
      expected: expected counts per token, float[V].
      detectable_tv: every law at total variation ``>= detectable_tv`` from the null law is
        rejected with probability ``>= 0.99`` at this ``alpha`` and sample size (see
        :mod:`spectheory.audit._power`; values ``>= 1`` guarantee nothing).
      hidden_tv: the part of ``detectable_tv`` that deviations inside pooled bins can add
        unseen (0 without pooling).
      control: rejection rate of the built-in negative control (a deviation of the stated
        size, at bin resolution, in its least detectable direction), or ``None`` when it was
        not run (:func:`chi_square_test` alone does not run it; the audits do).
    """

    statistic: float
    dof: int
    p_value: float
    alpha: float
    passed: bool
    counts: np.ndarray
    expected: np.ndarray
    detectable_tv: float
    hidden_tv: float
    control: Optional[float] = None


def _validated_law(probs, name: str) -> np.ndarray:
    with jax.enable_x64(True):
        probs = _v.as_probs(np.asarray(probs), name)
    probs = np.asarray(probs, dtype=np.float64)
    return probs / probs.sum()


def chi_square_test(samples, probs, *, alpha: float = 1e-3, min_expected: float = 5.0) -> ChiSquareResult:
    r"""Pearson's chi-squared test of ``samples`` (token ids) against the law ``probs``.

    .. math:: X^2 = \sum_b \frac{(O_b - E_b)^2}{E_b}

    Bins whose expected count is below ``min_expected`` are pooled into one bin (merged into the
    smallest other bin if still too small); a sample on a token of zero probability fails the
    test outright. For a one-point law (a single token of positive mass, ``V > 1``) that
    support check is the whole test. The result states the test's ``detectable_tv``: the
    smallest total-variation deviation it rejects with probability ``>= 0.99``
    (:mod:`spectheory.audit._power` gives the derivation; it rests on the noncentral
    chi-squared asymptotics of Pearson's statistic, with a margin).

    The test never reports ``passed`` when it could not test: if the law has more than one
    token of positive mass and pooling leaves a single bin (too few samples), it raises
    instead of returning a verdict. (On a one-token vocabulary every law on ``[0, V)`` is the
    null law: the id range check is a complete test, ``detectable_tv = 0``.)

    Args:
      samples: int[N] (any shape, flattened) token ids in ``[0, V)``, ``N >= 1``.
      probs: float[V], the law under the null hypothesis: finite, non-negative, summing to one
        within :func:`spectheory._validation.sum_tol` of its dtype (then normalised exactly).
      alpha: significance level in ``(0, 1)``; the test passes when ``p_value > alpha``.
      min_expected: pooling threshold, ``> 0``.

    Returns:
      :class:`ChiSquareResult`.

    Raises:
      ValueError: naming ``probs`` (NaN, inf, negative, all zero, not summing to one),
        ``samples`` (not integer ids, out of range, empty, or too few to
        test), ``alpha`` or ``min_expected``.

    >>> import numpy as np
    >>> law = np.array([0.5, 0.25, 0.25])
    >>> res = chi_square_test(np.random.default_rng(0).choice(3, 4000, p=law), law)
    >>> bool(res.passed), res.dof, round(res.detectable_tv, 3)
    (True, 2, 0.053)
    """
    alpha = _power.check_alpha(alpha)
    min_expected = _power.check_positive(min_expected, "min_expected")
    probs = _validated_law(probs, "probs")
    V = probs.shape[-1]
    with jax.enable_x64(True):
        samples = _v.as_tokens(np.asarray(samples), "samples", V, ndim=None)
    samples = np.asarray(samples).reshape(-1).astype(np.int64)
    if samples.size == 0:
        raise ValueError("samples: empty (expected at least one token id)")
    N = samples.size
    plan = _power.plan_chi_square(probs, N, alpha, min_expected, name="samples")
    return _run_test(samples, probs, plan)


def _run_test(samples: np.ndarray, probs: np.ndarray, plan: _power.ChiSquarePlan,
              control: Optional[float] = None) -> ChiSquareResult:
    N = samples.size
    V = probs.shape[0]
    inside = (samples >= 0) & (samples < V)  # a sampler under audit may emit ids outside [0, V)
    counts = np.bincount(samples[inside], minlength=V)
    expected = N * probs
    tail = (plan.detectable_tv, plan.bins.hidden, control)
    if not np.all(inside) or np.any(counts[probs == 0] > 0):
        return ChiSquareResult(float("inf"), plan.dof, 0.0, plan.alpha, False, counts, expected, *tail)
    if plan.dof == 0:  # one-point law, every sample on its token
        return ChiSquareResult(0.0, 0, 1.0, plan.alpha, True, counts, expected, *tail)
    pos = probs > 0
    obs_b = np.bincount(plan.bins.index[pos], weights=counts[pos], minlength=plan.bins.probs.size)
    stat = float(_power.pearson(obs_b, N, plan.bins.probs))
    p_value = float(scipy.stats.chi2.sf(stat, plan.dof))
    return ChiSquareResult(stat, plan.dof, p_value, plan.alpha, p_value > plan.alpha, counts, expected, *tail)


def planned_test(law: np.ndarray, num_samples: int, alpha: float, *, name: str = "num_samples",
                 min_expected: float = 5.0) -> _power.ChiSquarePlan:
    """The audits' front door: plan Pearson's test of ``law`` at ``num_samples`` samples and
    refuse (``ValueError`` naming ``name``) a size whose detectable TV exceeds
    :data:`spectheory.audit._power.MAX_DETECTABLE_TV`. Runs before any sample is drawn."""
    plan = _power.plan_chi_square(law, num_samples, alpha, min_expected, name=name)
    _power.require_detectable(plan.detectable_tv, name, num_samples, "the chi-squared test")
    return plan


def controlled_test(samples, law: np.ndarray, plan: _power.ChiSquarePlan, rng: np.random.Generator, *,
                    name: str = "num_samples") -> ChiSquareResult:
    """Run the planned test on ``samples`` (int[N]; an id outside ``[0, V)`` fails the test, as
    a sample on a token of null mass zero does) and its negative control
    (:func:`spectheory.audit._power.chi_square_control`); raise ``ValueError`` naming ``name``
    when the control shows the test powerless."""
    N = int(np.size(samples))
    rate = _power.chi_square_control(plan, N, rng)
    _power.require_control(rate, name, N, plan.tv_bins)
    return _run_test(np.asarray(samples).reshape(-1).astype(np.int64), law, plan, control=rate)


def sample_tokens(rule: Rule, p, q, n: int, *, key, num_samples: int, drafts=None) -> np.ndarray:
    """Run ``rule``'s sampler ``num_samples`` times from ``key`` (split per run).

    Without ``drafts`` each run draws fresh drafts with ``rule.drafts.sample`` then verifies;
    with ``drafts`` (int[n]) the drafts are held fixed. Returns int[num_samples] tokens.

    Args:
      rule: a :class:`spectheory.Rule` (its draft scheme samples, its verifier verifies).
      p: target law, float[V].
      q: draft law, float[V].
      n: number of drafts per run.
      key: a ``jax.random`` key; run ``i`` uses ``jax.random.split(key, num_samples)[i]``, so
        the result is reproducible.
      num_samples: number of runs (an int ``>= 1``).
      drafts: optional int[n] fixed drafts (ids in ``[0, V)``); ``None`` draws fresh ones.

    Returns:
      A NumPy integer array of shape ``(num_samples,)``: the token emitted by each run (the
      verifier's dtype, int64 for a host-only verifier).

    Raises:
      ValueError: naming ``key`` (not a ``jax.random`` key), ``num_samples`` (not an int
        ``>= 1``), ``p``, ``q``, ``n`` or ``drafts``.
    """
    rule = _as_rule(rule)
    key = _v.check_key(key)
    num_samples = _v.check_count(num_samples, "num_samples")
    pv = _v.as_probs(np.asarray(p), "p")
    qv = _v.as_probs(np.asarray(q), "q")
    V = _v.same_vocab(pv, qv)
    n = _v.check_n(n, V=V, replacement=rule.drafts.replacement, support=_v.support_size(qv))
    if drafts is not None:
        _v.as_tokens(drafts, "drafts", V, length=n)
    keys = jax.random.split(key, num_samples)
    ver = rule.verifier

    def one(k, p, q):
        if drafts is None:
            kd, kv = jax.random.split(k)
            d = rule.drafts.sample(kd, q, n)
        else:
            kv, d = k, drafts
        return ver.verify(kv, p, q, d).token

    if ver.host_only:
        # Same keys and draws as ``one``; only the host-side verifier runs in a Python loop.
        if drafts is None:
            split = jax.jit(jax.vmap(jax.random.split))(keys)
            kv = split[:, 1]
            ds = np.asarray(jax.jit(jax.vmap(lambda k, q: rule.drafts.sample(k, q, n), in_axes=(0, None)))(
                split[:, 0], jnp.asarray(q)))
        else:
            kv, ds = keys, np.repeat(np.asarray(drafts)[None], num_samples, axis=0)
        # Rewrap the keys from host key data: indexing a device key array per sample is slow.
        impl = jax.random.key_impl(kv)
        data = np.asarray(jax.random.key_data(kv))
        return np.array([int(ver.verify(jax.random.wrap_key_data(data[i], impl=impl), p, q, ds[i]).token)
                         for i in range(num_samples)])
    # p and q enter as arguments, not closed-over constants: XLA would otherwise constant-fold
    # the whole batch at compile time.
    return np.asarray(jax.jit(jax.vmap(one, in_axes=(0, None, None)))(keys, jnp.asarray(p), jnp.asarray(q)))


def chi_square(rule: Rule, p, q, n: int, *, key, num_samples: int = 20_000, alpha: float = 1e-3,
               drafts=None) -> ChiSquareResult:
    r"""Chi-squared audit of ``rule``'s sampler on a fixed key.

    Without ``drafts``: drafts are drawn by the rule's scheme and the emitted tokens are tested
    against the target ``p`` (losslessness). With ``drafts`` fixed: the emitted tokens are
    tested against the exact kernel :math:`K(\cdot \mid \bar x)`, i.e. the sampler is checked
    to realise the kernel the exact audit enumerates.

    Args:
      rule: a :class:`spectheory.Rule` or a registered rule name.
      p: target law, float[V].
      q: draft law, float[V].
      n: number of drafts.
      key: a ``jax.random`` key (fixed, so the verdict is reproducible); it also seeds the
        negative control.
      num_samples: number of runs.
      alpha: significance level in ``(0, 1)``.
      drafts: optional int[n] fixed drafts.

    Returns:
      :class:`ChiSquareResult`, with ``detectable_tv`` (every law at total variation
      ``>= detectable_tv`` from the tested law is rejected with probability ``>= 0.99``) and
      ``control``, the rejection rate of the negative control: the same test on 200 seeded
      samples of size ``num_samples`` from a law at the stated detectable TV (at bin
      resolution, in the least detectable direction).

    Raises:
      ValueError: naming ``num_samples`` when it is not an int ``>= 1``, when the test could not
        see a deviation of total variation 0.5 at that size (the message gives the detectable
        TV it would have had), or when the negative control is rejected in fewer than 98% of
        its replicates; naming ``key``, ``alpha``, ``p``, ``q``, ``n`` or ``drafts`` for bad
        values of those.
    """
    rule = _as_rule(rule)
    with jax.enable_x64(True):
        return _chi_square(rule, p, q, n, key=key, num_samples=num_samples, alpha=alpha, drafts=drafts)


def _chi_square(rule, p, q, n, *, key, num_samples, alpha, drafts):
    key = _v.check_key(key)
    num_samples = _v.check_count(num_samples, "num_samples")
    alpha = _power.check_alpha(alpha)
    p = _v.as_probs(np.asarray(p), "p")
    q = _v.as_probs(np.asarray(q), "q")
    V = _v.same_vocab(p, q)
    n = _v.check_n(n, V=V, replacement=rule.drafts.replacement, support=int(np.sum(np.asarray(q) > 0)))
    if not rule.supports(n, V):
        raise ValueError(f"rule {rule.name!r} is not defined for n={n} drafts over V={V} tokens")
    if drafts is not None:
        drafts = _v.as_tokens(drafts, "drafts", V, length=n)
        law = kernel_table(rule.verifier.kernel, p, q, np.asarray(drafts)[None], host_only=rule.verifier.host_only)[0]
    else:
        law = np.asarray(p, dtype=np.float64)
    law = law / law.sum()
    plan = planned_test(law, num_samples, alpha)  # refuses before any sampling
    tokens = sample_tokens(rule, p, q, n, key=key, num_samples=num_samples, drafts=drafts)
    return controlled_test(tokens, law, plan, _power.rng_from_key(key))
