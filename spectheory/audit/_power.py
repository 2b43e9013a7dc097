r"""What a statistical audit can see: detectable total-variation deviations (private).

Every statistical audit of the package (:func:`spectheory.audit.chi_square_test`,
:func:`spectheory.audit.chi_square`, :func:`spectheory.testing.check_lossless`, Monte-Carlo
:func:`spectheory.audit.acceptance`) states, next to its verdict, the smallest deviation from
the null law it rejects with probability at least :data:`POWER` at its level ``alpha`` and
sample size ``N``: the *detectable TV*. The machinery lives here once, so that black-box audits
of whole engines can reuse it: plan a test (:func:`plan_chi_square`, :func:`mean_test`), refuse
a size too small to see anything (:func:`require_detectable`), and check the claim with a
seeded negative control (:func:`chi_square_control`, :func:`mean_control`).

**Pearson's test.** Tokens of null mass zero form no bin: a sample on one rejects outright.
The other tokens are pooled into ``B`` bins of null mass :math:`\pi_b` (:func:`pool_bins`), and
the test rejects when :math:`X^2 = \sum_b (O_b - N\pi_b)^2 / (N\pi_b) \ge c`, the upper
``alpha`` quantile of :math:`\chi^2_{B-1}`.

1. *Asymptotic power.* Under an alternative with bin masses :math:`\pi'_b`, :math:`X^2` is
   asymptotically noncentral :math:`\chi^2_{B-1}(\lambda)` with
   :math:`\lambda = N\chi^2(\pi' \| \pi) = N \sum_b (\pi'_b - \pi_b)^2 / \pi_b`
   (Cochran 1952; Mitra 1958; Lehmann & Romano 2005, §14.3 — exact for local alternatives
   :math:`\pi' = \pi + h/\sqrt N`, and the standard power approximation for a fixed one,
   Guenther 1977). The noncentral family is stochastically increasing in :math:`\lambda`, so a
   lower bound on :math:`\lambda` is a lower bound on the power.
2. *From* :math:`\chi^2` *to TV.* By Cauchy–Schwarz,
   :math:`(\sum_b |d_b|)^2 = (\sum_b \frac{|d_b|}{\sqrt{\pi_b}} \sqrt{\pi_b})^2 \le
   \chi^2(\pi'\|\pi) \sum_b \pi_b`, i.e. :math:`\chi^2 \ge 4\,\mathrm{TV}_B^2` where
   :math:`\mathrm{TV}_B` is the TV between the bin laws (Gibbs & Su 2002, §3). Equality holds
   iff :math:`|d_b| = 2\varepsilon\pi_b` on two groups of bins of null mass 1/2 each: that is
   the least detectable direction, and :func:`worst_case_bins` builds it.
3. *The bin-level guarantee.* Let :math:`\lambda^*` solve
   :math:`\Pr[\chi^2_{B-1}(\lambda^*) \ge c] = P_d`. Then every alternative with
   :math:`\mathrm{TV}_B \ge \varepsilon_B = \sqrt{\lambda^* / (4N)}` is rejected with asymptotic
   probability :math:`\ge P_d`. We solve at the design power :math:`P_d =`
   :data:`DESIGN_POWER` (0.999) and state :data:`POWER` (0.99): the margin absorbs the error
   of the noncentral approximation, which is within a few 0.001 of the simulated worst-case
   power once every bin expects :math:`\ge 5` samples (the pooling rule below), so a deviation
   of the stated size is rejected in 99% of repetitions and not only on average.
4. *Mass outside the support.* If the alternative puts mass :math:`\delta` on tokens of null
   mass zero, the test rejects unless no sample lands there (probability
   :math:`(1-\delta)^N`), and given that, the samples follow the alternative conditioned on the
   support, whose bin-level TV to :math:`\pi` is at least :math:`\mathrm{TV}_B - \delta`. So the
   miss probability is at most
   :math:`\max_{0 \le \delta \le \varepsilon} (1-\delta)^N \Pr[\chi^2_{B-1}(4N(\varepsilon-\delta)^2) < c]`,
   and :math:`\varepsilon_B` is the smallest :math:`\varepsilon` making this
   :math:`\le 1 - P_d` (at :math:`\delta = 0` it is step 3; the factor :math:`(1-\delta)^N` is
   exact). Here :math:`\mathrm{TV}_B = \frac12(\sum_b |\pi'_b - \pi_b| + \delta)`. For a
   one-point null law (``B = 1``) the support check is the whole test and its power is exact:
   :math:`\varepsilon_B = 1 - (1 - P_d)^{1/N}`. (Solved at :math:`P_d` too, not at 0.99:
   the stated TV then carries the same margin everywhere, and the negative control below,
   which asks for 98% of 200 replicates, does not fail by chance.)
5. *What pooling hides.* Inside a bin :math:`S` of several tokens the test sees only the bin's
   mass. For any laws :math:`a, b` on :math:`S`,
   :math:`\sum_{y \in S} |a_y - b_y| \le |a(S) - b(S)| + 2\,(b(S) - \min_{y \in S} b_y)`
   (write it as :math:`a(S) - b(S) + 2\sum_y (b_y - a_y)_+` and bound the positive parts),
   with equality when :math:`a` puts its mass on the lightest token. Summing over bins,
   :math:`\mathrm{TV}(p', p) \le \mathrm{TV}_B(p', p) + h`, where the *hidden TV*
   :math:`h = \sum_{|S| \ge 2} (\pi_S - \min_{y\in S} p_y)` depends only on the null law and
   the pooling. Hence the token-level guarantee: **every alternative with**
   :math:`\mathrm{TV}(p', p) \ge \varepsilon_B + h` **is rejected with probability**
   :math:`\ge 0.99` — the *detectable TV*. Without pooling :math:`h = 0`.

We rely on the asymptotics of step 1 (with the margin of step 3); steps 2, 4 and 5 are exact
inequalities. Each audit checks the claim on its own bins and ``N`` with a negative control:
:data:`CONTROL_REPS` seeded multinomial samples from the least detectable alternative at
:math:`\varepsilon_B` must be rejected at rate :math:`\ge` :data:`CONTROL_MIN_RATE`.

**A Monte-Carlo mean** of ``N`` i.i.d. values in an interval of width ``span`` (a Bernoulli
acceptance indicator: ``span = 1``). It is finite-sample and distribution-free, by Hoeffding's
inequality (Hoeffding 1963, Thm 2): the estimate lies within the half-width
:math:`h = \mathrm{span}\sqrt{\ln(2/\alpha)/(2N)}` of the true mean with probability
:math:`\ge 1-\alpha`, so "reject a claimed mean :math:`m_0` when :math:`|\hat m - m_0| > h`" has
level :math:`\le\alpha`; and when :math:`|m - m_0| \ge h + g` with
:math:`g = \mathrm{span}\sqrt{\ln(1/(1-P))/(2N)}`, a one-sided Hoeffding bound makes
:math:`|\hat m - m_0| \le h` happen with probability :math:`\le 1 - P`. The detectable
deviation is :math:`h + g`; for a Bernoulli mean it is the TV between the two laws of the
indicator. Conservative (the level is below ``alpha``), but no asymptotics.

References:
  W. G. Cochran (1952), The χ² test of goodness of fit, Ann. Math. Statist. 23, 315–345.
  S. K. Mitra (1958), On the limiting power function of the frequency chi-square test, Ann.
  Math. Statist. 29, 1221–1233. E. L. Lehmann & J. P. Romano (2005), Testing Statistical
  Hypotheses, 3rd ed., Springer, §14.3. W. C. Guenther (1977), Power and sample size for
  approximate chi-square tests, Amer. Statist. 31, 83–85. A. L. Gibbs & F. E. Su (2002), On
  choosing and bounding probability metrics, Int. Statist. Rev. 70, 419–435. W. Hoeffding
  (1963), Probability inequalities for sums of bounded random variables, JASA 58, 13–30.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
import scipy.optimize
import scipy.stats

#: Stated power: an audit's detectable TV is a deviation it rejects with at least this probability.
POWER = 0.99
#: Power at which the asymptotic (noncentral chi-squared) equation is solved (see step 3).
DESIGN_POWER = 0.999
#: Audits refuse a sample size whose detectable TV exceeds this.
MAX_DETECTABLE_TV = 0.5
#: Replicates of the built-in negative control.
CONTROL_REPS = 200
#: Least rejection rate the negative control must reach at the stated detectable TV.
CONTROL_MIN_RATE = 0.98


def check_alpha(alpha, name: str = "alpha") -> float:
    """A significance level: a real number in ``(0, 1)`` (no bool), else ``ValueError``."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: expected a float in (0, 1), got {alpha!r}")
    a = float(alpha)
    if not 0.0 < a < 1.0:
        raise ValueError(f"{name}: expected a float in (0, 1), got {a!r}")
    return a


def check_positive(x, name: str) -> float:
    """A finite real number ``> 0`` (no bool), else ``ValueError`` naming the argument."""
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) or not (
            math.isfinite(float(x)) and float(x) > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {x!r}")
    return float(x)


class Bins(NamedTuple):
    """Pooled bins of a null law for Pearson's test (see :func:`pool_bins`).

    Attributes:
      index: int[V], the bin of each token; ``-1`` for tokens of null mass zero.
      probs: float[B], null mass of each bin.
      hidden: the hidden TV :math:`h`, what deviations inside multi-token bins can add unseen.
      outside: whether some token has null mass zero (a sample there rejects outright).
    """

    index: np.ndarray
    probs: np.ndarray
    hidden: float
    outside: bool


def pool_bins(probs: np.ndarray, num_samples: int, min_expected: float) -> Bins:
    """Pool the tokens of ``probs`` (float64[V], summing to one) for ``num_samples`` samples.

    Tokens expecting at least ``min_expected`` samples are bins of their own; the others are
    pooled into one bin, which is merged into the smallest other bin if it still expects fewer
    than ``min_expected``. Tokens of mass zero get index ``-1``.
    """
    V = probs.shape[0]
    index = np.full(V, -1, dtype=np.int64)
    expected = num_samples * probs
    pos = probs > 0
    big = np.flatnonzero(pos & (expected >= min_expected))
    small = np.flatnonzero(pos & (expected < min_expected))
    index[big] = np.arange(big.size)
    B = big.size
    if small.size:
        if expected[small].sum() < min_expected and B:
            index[small] = int(np.argmin(expected[big]))  # merged into the smallest bin
        else:
            index[small] = B
            B += 1
    bin_probs = np.bincount(index[pos], weights=probs[pos], minlength=B)
    sizes = np.bincount(index[pos], minlength=B)
    lightest = np.full(B, np.inf)
    np.minimum.at(lightest, index[pos], probs[pos])
    hidden = float(np.sum((bin_probs - lightest)[sizes >= 2]))
    return Bins(index, bin_probs, hidden, bool(np.any(~pos)))


def pearson(bin_counts: np.ndarray, num_samples: int, bin_probs: np.ndarray) -> np.ndarray:
    """Pearson's statistic of ``bin_counts`` (int[..., B]) against ``num_samples * bin_probs``."""
    e = num_samples * bin_probs
    return np.sum((bin_counts - e) ** 2 / e, axis=-1)


@functools.lru_cache(maxsize=1024)
def _critical(dof: int, alpha: float) -> float:
    return float(scipy.stats.chi2.isf(alpha, dof))


@functools.lru_cache(maxsize=1024)
def _noncentrality(dof: int, alpha: float, power: float) -> float:
    """The :math:`\\lambda^*` with :math:`\\Pr[\\chi^2_{dof}(\\lambda^*) \\ge c_\\alpha] = power`."""
    c = _critical(dof, alpha)
    f = lambda lam: float(scipy.stats.ncx2.sf(c, dof, lam)) - power  # noqa: E731
    hi = 1.0
    while f(hi) < 0:
        hi *= 2
    return float(scipy.optimize.brentq(f, 0.0, hi, xtol=1e-10, rtol=1e-12))


def _miss(eps: float, dof: int, alpha: float, num_samples: int, grid: int = 257) -> float:
    """Upper bound on the miss probability at bin-level TV ``eps`` with mass outside the
    support allowed (step 4): the maximum over ``delta`` in ``[0, eps]``."""
    delta = np.linspace(0.0, eps, grid)
    lam = 4.0 * num_samples * (eps - delta) ** 2
    miss = scipy.stats.ncx2.cdf(_critical(dof, alpha), dof, np.maximum(lam, 1e-300))
    return float(np.max(np.exp(num_samples * np.log1p(-np.minimum(delta, 1 - 1e-16))) * miss))


class ChiSquarePlan(NamedTuple):
    """What Pearson's test on a given null law and sample size can see.

    Attributes:
      bins: the pooled :class:`Bins`.
      dof: degrees of freedom, ``B - 1`` (0: the support check alone, one-point laws only).
      alpha: the level.
      tv_bins: :math:`\\varepsilon_B`, the detectable TV at the bin resolution.
      detectable_tv: :math:`\\varepsilon_B + h`, the detectable TV between token laws.
    """

    bins: Bins
    dof: int
    alpha: float
    tv_bins: float
    detectable_tv: float


def plan_chi_square(probs: np.ndarray, num_samples: int, alpha: float, min_expected: float,
                    name: str = "num_samples") -> ChiSquarePlan:
    """Pool the bins of ``probs`` (validated float64[V]) for ``num_samples`` samples and compute
    the detectable TV (module docstring, steps 1-5). A law on a one-token vocabulary has no
    alternative among laws on ``[0, V)``: its detectable TV is 0 (the id range is the test).

    Raises:
      ValueError: naming ``name`` when the positive-mass tokens pool into one bin while
        several tokens have mass (the test could not see a deviation among them).
    """
    bins = pool_bins(probs, num_samples, min_expected)
    dof = bins.probs.size - 1
    support = int(np.sum(probs > 0))
    if probs.shape[0] == 1:
        return ChiSquarePlan(bins, 0, alpha, 0.0, 0.0)
    if dof < 1 and support >= 2:
        raise ValueError(
            f"{name}: {num_samples} samples cannot test this law: pooling the tokens expecting fewer than "
            f"{min_expected:g} samples leaves one bin (dof 0); use more samples")
    if dof == 0:  # one-point law: the support check, exact (step 4 with B = 1), at the design power
        tv = 1.0 - (1.0 - DESIGN_POWER) ** (1.0 / num_samples)
        return ChiSquarePlan(bins, 0, alpha, tv, tv + bins.hidden)
    target = 1.0 - DESIGN_POWER
    eps0 = math.sqrt(_noncentrality(dof, alpha, DESIGN_POWER) / (4.0 * num_samples))
    eps = eps0
    if bins.outside and _miss(eps0, dof, alpha, num_samples) > target * (1 + 1e-9):
        hi = eps0
        while _miss(hi, dof, alpha, num_samples) > target:
            hi *= 1.5
        eps = float(scipy.optimize.brentq(lambda e: _miss(e, dof, alpha, num_samples) - target, eps0, hi,
                                          xtol=1e-10))
    return ChiSquarePlan(bins, dof, alpha, eps, eps + bins.hidden)


def require_detectable(tv: float, name: str, num_samples: int, what: str = "the test") -> None:
    """Refuse (``ValueError`` naming ``name``) a detectable TV above :data:`MAX_DETECTABLE_TV`."""
    if not tv <= MAX_DETECTABLE_TV:
        raise ValueError(
            f"{name}: {num_samples} samples are too few: {what} could only detect deviations of total "
            f"variation >= {tv:.4g} (limit {MAX_DETECTABLE_TV:g}); use more samples")


def worst_case_bins(bin_probs: np.ndarray, tv: float) -> np.ndarray:
    """The alternative bin law at bin-level TV ``tv`` of least chi-squared divergence (step 2).

    Bins are split greedily into two groups of null mass as close to 1/2 as possible; the
    heavier group (mass :math:`P_- \\ge 1/2 \\ge` ``tv``) loses ``tv`` and the other gains it,
    each in proportion to the null masses, so that
    :math:`\\chi^2 = \\mathrm{tv}^2 (1/P_+ + 1/P_-)`, which is :math:`4\\,\\mathrm{tv}^2` when
    the split is exact.
    """
    order = np.argsort(-bin_probs, kind="stable")
    group = np.zeros(bin_probs.size, dtype=bool)  # True: gains
    mass = [0.0, 0.0]
    for b in order:
        g = 0 if mass[0] <= mass[1] else 1
        mass[g] += bin_probs[b]
        group[b] = g == 1
    gain, lose = bin_probs[group].sum(), bin_probs[~group].sum()
    if gain > lose:
        group, gain, lose = ~group, lose, gain
    tv = min(float(tv), float(lose))
    return np.where(group, bin_probs * (1 + tv / gain), bin_probs * (1 - tv / lose))


def chi_square_control(plan: ChiSquarePlan, num_samples: int, rng: np.random.Generator,
                       reps: int = CONTROL_REPS) -> float:
    """Negative control: the rejection rate of the same test on ``reps`` samples of size
    ``num_samples`` from the least detectable alternative at :math:`\\varepsilon_B` (the
    stated detectable TV at bin resolution). One vectorised multinomial draw per replicate."""
    if plan.bins.index.size == 1:  # V = 1: no alternative exists, none can be missed
        return 1.0
    if plan.dof == 0:  # one-point law: move tv_bins of mass outside (exact binomial miss)
        return float(np.mean(rng.binomial(num_samples, plan.tv_bins, size=reps) > 0))
    alt = worst_case_bins(plan.bins.probs, plan.tv_bins)
    counts = rng.multinomial(num_samples, alt / alt.sum(), size=reps)
    stat = pearson(counts, num_samples, plan.bins.probs)
    return float(np.mean(stat >= _critical(plan.dof, plan.alpha)))


def require_control(rate: float, name: str, num_samples: int, tv: float) -> None:
    """Raise ``ValueError`` naming ``name`` when the negative control rejected too rarely."""
    if not rate >= CONTROL_MIN_RATE:
        raise ValueError(
            f"{name}: with {num_samples} samples the negative control (a deviation of total variation "
            f"{tv:.3g}, the stated detectable TV) was rejected in only {rate:.1%} of {CONTROL_REPS} seeded "
            f"replicates (< {CONTROL_MIN_RATE:.0%}): the test is powerless at this size; use more samples")


def rng_from_key(key) -> np.random.Generator:
    """A NumPy generator seeded by a (checked) ``jax.random`` key, for the negative controls."""
    import jax

    data = jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.random.default_rng(np.asarray(data, dtype=np.uint32).ravel().tolist())


class MeanTest(NamedTuple):
    """What a Monte-Carlo mean of ``N`` values in an interval of width ``span`` can see.

    Attributes:
      halfwidth: :math:`h`; the estimate is within ``halfwidth`` of the true mean with
        probability :math:`\\ge 1 - \\alpha` (a claimed mean farther away is rejected).
      detectable: a claimed mean at least this far from the true one is rejected with
        probability :math:`\\ge` :data:`POWER` (for a Bernoulli mean: a TV).
    """

    halfwidth: float
    detectable: float


def mean_test(num_samples: int, alpha: float, span: float = 1.0) -> MeanTest:
    """Hoeffding half-width and detectable deviation of a Monte-Carlo mean (module docstring).

    >>> t = mean_test(20_000, 1e-3)
    >>> round(t.halfwidth, 4), round(t.detectable, 4)
    (0.0138, 0.0245)
    """
    h = span * math.sqrt(math.log(2.0 / alpha) / (2.0 * num_samples))
    g = span * math.sqrt(math.log(1.0 / (1.0 - POWER)) / (2.0 * num_samples))
    return MeanTest(h, h + g)


def mean_control(test: MeanTest, num_samples: int, rng: np.random.Generator, reps: int = CONTROL_REPS) -> float:
    """Negative control of :func:`mean_test`: the rate at which a claimed Bernoulli mean
    ``1/2 - detectable`` is rejected when the truth is ``1/2`` (largest variance), over ``reps``
    seeded binomial replicates."""
    est = rng.binomial(num_samples, 0.5, size=reps) / num_samples
    return float(np.mean(np.abs(est - (0.5 - test.detectable)) > test.halfwidth))
