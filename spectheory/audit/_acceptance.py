"""Acceptance rate of a rule by the best available route (closed form, enumeration, Monte Carlo)."""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import _validation as _v
from spectheory._registry import Rule
from spectheory.audit._exact import exact

#: Largest enumerated draft law used by ``method="auto"``.
AUTO_EXACT_LIMIT = 50_000


class Acceptance(NamedTuple):
    """An acceptance rate and how it was obtained.

    Attributes:
      value: the acceptance rate.
      method: ``"closed_form"``, ``"exact"`` (enumeration) or ``"monte_carlo"``.
      stderr: standard error (0 for the exact routes).
    """

    value: float
    method: str
    stderr: float


def acceptance(rule: Rule, p, q, n: int, *, method: str = "auto", key=None,
               num_samples: int = 20_000) -> Acceptance:
    r"""Acceptance rate :math:`\Pr[y \in \mathrm{set}(\bar x)]` of ``rule`` for ``(p, q, n)``.

    Args:
      rule: a :class:`spectheory.Rule`.
      p: target law, float[V]. q: draft law, float[V]. n: number of drafts.
      method: ``"closed_form"`` (the verifier's ``acceptance``), ``"exact"`` (enumeration via
        :func:`spectheory.audit.exact`), ``"monte_carlo"`` (``num_samples`` runs of the sampler
        from ``key``), or ``"auto"``: the closed form if there is one, else enumeration when the
        draft law has at most :data:`AUTO_EXACT_LIMIT` tuples, else Monte Carlo.
      key: ``jax.random`` key for Monte Carlo (default ``jax.random.key(0)``).
      num_samples: Monte-Carlo sample size.

    Returns:
      :class:`Acceptance`.
    """
    V = int(np.shape(p)[-1])
    support = int(np.sum(np.asarray(q) > 0))
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
    if method == "monte_carlo":
        key = jax.random.key(0) if key is None else key
        p = _v.as_probs(p, "p")
        q = _v.as_probs(q, "q")
        ver = rule.verifier

        def one(k):
            kd, kv = jax.random.split(k)
            d = rule.drafts.sample(kd, q, n)
            tok = ver.verify(kv, p, q, d).token
            return jnp.any(d == tok)

        keys = jax.random.split(key, num_samples)
        if ver.host_only:
            hits = np.array([bool(one(k)) for k in keys])
        else:
            hits = np.asarray(jax.jit(jax.vmap(one))(keys))
        m = float(hits.mean())
        return Acceptance(m, "monte_carlo", float(np.sqrt(max(m * (1 - m), 1e-300) / num_samples)))
    raise ValueError(f"method: expected 'auto', 'closed_form', 'exact' or 'monte_carlo', got {method!r}")
