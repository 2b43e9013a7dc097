"""Acceptance rate of a rule by the best available route (closed form, enumeration, Monte Carlo)."""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _validation as _v
from spectheory._registry import Rule
from spectheory._registry import as_rule as _as_rule
from spectheory.audit import _power
from spectheory.audit._exact import exact

#: Largest enumerated draft law used by ``method="auto"``.
AUTO_EXACT_LIMIT = 50_000


class Acceptance(NamedTuple):
    """An acceptance rate and how it was obtained.

    Attributes:
      value: the acceptance rate.
      method: ``"closed_form"``, ``"exact"`` (enumeration) or ``"monte_carlo"``.
      stderr: standard error (0 for the exact routes).
      halfwidth: Monte Carlo: with probability ``>= 1 - alpha`` the true rate lies within
        ``value +- halfwidth`` (Hoeffding, finite-sample), so a claimed rate farther away is
        rejected at level ``alpha``; 0 for the exact routes.
      detectable_tv: Monte Carlo: a claimed rate at least this far from the true one is
        rejected (lies outside ``value +- halfwidth``) with probability ``>= 0.99``; it is the
        total variation between the two laws of the acceptance indicator. 0 for the exact
        routes (:mod:`spectheory.audit._power` gives the derivation).
      control: Monte Carlo: rejection rate of the built-in negative control (a claimed rate
        off by ``detectable_tv`` on 200 seeded binomial replicates of the same size at the
        largest variance); ``None`` for the exact routes.
    """

    value: float
    method: str
    stderr: float
    halfwidth: float = 0.0
    detectable_tv: float = 0.0
    control: Optional[float] = None


def _hits_fn(rule: Rule, n: int):
    """One jitted, vmapped Monte-Carlo kernel per ``(rule, n)`` (p and q are arguments)."""

    def one(k, p, q):
        kd, kv = jax.random.split(k)
        d = rule.drafts.sample(kd, q, n)
        tok = rule.verifier.verify(kv, p, q, d).token
        return jnp.any(d == tok)

    if rule.verifier.host_only:
        return one
    return jax.jit(jax.vmap(one, in_axes=(0, None, None)))


_cached_hits_fn = functools.lru_cache(maxsize=64)(_hits_fn)


def acceptance(rule: Rule, p, q, n: int, *, method: str = "auto", key=None,
               num_samples: int = 20_000, alpha: float = 1e-3) -> Acceptance:
    r"""Acceptance rate :math:`\Pr[y \in \mathrm{set}(\bar x)]` of ``rule`` for ``(p, q, n)``.

    Args:
      rule: a :class:`spectheory.Rule` or a registered rule name.
      p: target law, float[V]. q: draft law, float[V]. n: number of drafts.
      method: ``"closed_form"`` (the verifier's ``acceptance``), ``"exact"`` (enumeration via
        :func:`spectheory.audit.exact`), ``"monte_carlo"`` (``num_samples`` runs of the sampler
        from ``key``), or ``"auto"``: the closed form if there is one, else enumeration when the
        draft law has at most :data:`AUTO_EXACT_LIMIT` tuples, else Monte Carlo.
      key: ``jax.random`` key for Monte Carlo (default ``jax.random.key(0)``); it also seeds the
        negative control.
      num_samples: Monte-Carlo sample size.
      alpha: Monte Carlo: level of the interval ``value +- halfwidth``, in ``(0, 1)``.

    Returns:
      :class:`Acceptance`. A Monte-Carlo estimate carries ``halfwidth`` and ``detectable_tv``
      (finite-sample, by Hoeffding's inequality: no asymptotics) and the rate of its negative
      control.

    Raises:
      ValueError: naming ``num_samples`` when Monte Carlo is run with a size whose detectable
        TV exceeds 0.5 (fewer than 49 runs at ``alpha = 1e-3``; the message gives it) or is not
        an int ``>= 1``; naming ``key``, ``alpha``, ``method``, ``p``, ``q`` or ``n`` for bad
        values of those; or when the rule is not defined for ``(n, V)``.
    """
    rule = _as_rule(rule)
    with jax.enable_x64(True):
        pv = _v.as_probs(np.asarray(p), "p")
        qv = _v.as_probs(np.asarray(q), "q")
    V = _v.same_vocab(pv, qv)
    support = _v.support_size(qv)
    n = _v.check_n(n)
    if method not in ("auto", "closed_form", "exact", "monte_carlo"):
        raise ValueError(f"method: expected 'auto', 'closed_form', 'exact' or 'monte_carlo', got {method!r}")
    if not rule.supports(n, V) or (not rule.drafts.replacement and n > support):
        raise ValueError(f"rule {rule.name!r} is not defined for n={n} drafts over V={V} tokens")
    if method == "auto":
        if rule.verifier.acceptance is not None:
            method = "closed_form"
        elif support**n <= AUTO_EXACT_LIMIT:
            method = "exact"
        else:
            method = "monte_carlo"
    if method == "closed_form":
        if rule.verifier.acceptance is None:
            raise ValueError(f"rule {rule.name!r} has no closed-form acceptance")
        with jax.enable_x64(True):
            val = float(rule.verifier.acceptance(np.asarray(p, np.float64), np.asarray(q, np.float64), n))
        return Acceptance(val, "closed_form", 0.0)
    if method == "exact":
        return Acceptance(exact(rule, p, q, n).acceptance, "exact", 0.0)
    # Monte Carlo: refuse a size too small to see anything before running the sampler
    key = jax.random.key(0) if key is None else _v.check_key(key)
    num_samples = _v.check_count(num_samples, "num_samples")
    alpha = _power.check_alpha(alpha)
    test = _power.mean_test(num_samples, alpha)
    _power.require_detectable(test.detectable, "num_samples", num_samples, "the Monte-Carlo estimate")
    p = _v.as_probs(p, "p")
    q = _v.as_probs(q, "q")
    try:
        one = _cached_hits_fn(rule, n)
    except TypeError:  # an unhashable rule: no cache
        one = _hits_fn(rule, n)
    keys = jax.random.split(key, num_samples)
    if rule.verifier.host_only:
        hits = np.array([bool(one(k, p, q)) for k in keys])
    else:
        hits = np.asarray(one(keys, p, q))
    m = float(hits.mean())
    rate = _power.mean_control(test, num_samples, _power.rng_from_key(key))
    _power.require_control(rate, "num_samples", num_samples, test.detectable)
    return Acceptance(m, "monte_carlo", float(np.sqrt(max(m * (1 - m), 1e-300) / num_samples)),
                      test.halfwidth, test.detectable, rate)
