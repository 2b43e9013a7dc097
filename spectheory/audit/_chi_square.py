"""Statistical audits: chi-squared goodness of fit of a sampler against an exact law."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from spectheory import _validation as _v
from spectheory._registry import Rule
from spectheory.audit._exact import kernel_table


class ChiSquareResult(NamedTuple):
    """Outcome of a chi-squared goodness-of-fit test.

    Attributes:
      statistic: Pearson's statistic after pooling sparse bins (``inf`` if a sample fell
        where the law has zero mass).
      dof: degrees of freedom (number of pooled bins minus one).
      p_value: upper-tail probability of ``statistic``.
      alpha: the stated significance level.
      passed: ``p_value > alpha``.
      counts: observed counts per token, int[V].
      expected: expected counts per token, float[V].
    """

    statistic: float
    dof: int
    p_value: float
    alpha: float
    passed: bool
    counts: np.ndarray
    expected: np.ndarray


def chi_square_test(samples, probs, *, alpha: float = 1e-3, min_expected: float = 5.0) -> ChiSquareResult:
    r"""Pearson's chi-squared test of ``samples`` (token ids) against the law ``probs``.

    .. math:: X^2 = \sum_b \frac{(O_b - E_b)^2}{E_b}

    Bins whose expected count is below ``min_expected`` are pooled into one bin (merged into the
    smallest other bin if still too small); a sample on a token of zero probability fails the
    test outright.

    Args:
      samples: int[N] token ids.
      probs: float[V], the law under the null hypothesis.
      alpha: significance level; the test passes when ``p_value > alpha``.
      min_expected: pooling threshold.

    Returns:
      :class:`ChiSquareResult`.
    """
    probs = np.asarray(probs, dtype=np.float64)
    samples = np.asarray(samples).reshape(-1)
    V = probs.shape[-1]
    if samples.size == 0:
        raise ValueError("samples: empty")
    if samples.min() < 0 or samples.max() >= V:
        raise ValueError(f"samples: token ids must lie in [0, {V})")
    probs = probs / probs.sum()
    N = samples.size
    counts = np.bincount(samples, minlength=V)
    expected = N * probs
    if np.any(counts[probs == 0] > 0):
        return ChiSquareResult(float("inf"), max(int(np.sum(probs > 0)) - 1, 0), 0.0, alpha, False, counts, expected)
    pos = probs > 0
    big = pos & (expected >= min_expected)
    small = pos & ~big
    obs_b = list(counts[big])
    exp_b = list(expected[big])
    if small.any():
        o, e = counts[small].sum(), expected[small].sum()
        if e < min_expected and exp_b:
            j = int(np.argmin(exp_b))
            obs_b[j] += o
            exp_b[j] += e
        else:
            obs_b.append(o)
            exp_b.append(e)
    obs_b, exp_b = np.asarray(obs_b, float), np.asarray(exp_b, float)
    dof = len(obs_b) - 1
    if dof < 1:
        return ChiSquareResult(0.0, 0, 1.0, alpha, True, counts, expected)
    stat = float(np.sum((obs_b - exp_b) ** 2 / exp_b))
    p_value = float(scipy.stats.chi2.sf(stat, dof))
    return ChiSquareResult(stat, dof, p_value, alpha, p_value > alpha, counts, expected)


def sample_tokens(rule: Rule, p, q, n: int, *, key, num_samples: int, drafts=None) -> np.ndarray:
    """Run ``rule``'s sampler ``num_samples`` times from ``key`` (split per run).

    Without ``drafts`` each run draws fresh drafts with ``rule.drafts.sample`` then verifies;
    with ``drafts`` (int[n]) the drafts are held fixed. Returns int[num_samples] tokens.
    """
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
      rule: a :class:`spectheory.Rule`.
      p: target law, float[V].
      q: draft law, float[V].
      n: number of drafts.
      key: a ``jax.random`` key (fixed, so the verdict is reproducible).
      num_samples: number of runs.
      alpha: significance level.
      drafts: optional int[n] fixed drafts.

    Returns:
      :class:`ChiSquareResult`.
    """
    with jax.enable_x64(True):
        return _chi_square(rule, p, q, n, key=key, num_samples=num_samples, alpha=alpha, drafts=drafts)


def _chi_square(rule, p, q, n, *, key, num_samples, alpha, drafts):
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
    tokens = sample_tokens(rule, p, q, n, key=key, num_samples=num_samples, drafts=drafts)
    return chi_square_test(tokens, law, alpha=alpha)
