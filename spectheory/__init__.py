"""spectheory: the theory and algorithms of speculative decoding.

Acceptance rules as pure JAX functions, exact audits of losslessness, optimal acceptance
bounds, and adapters for real causal language models.

Public entry points:

* :func:`rule`, :func:`rules`, :func:`register` and the contract types :class:`Rule`,
  :class:`DraftScheme`, :class:`Verifier`, :class:`VerifyResult`;
* :func:`checked` and :func:`checkify`: the front door's value checks inside ``jax.jit`` and
  ``jax.vmap`` (built on ``jax.experimental.checkify``), which plain jitted or vmapped calls
  skip;
* :mod:`spectheory.verify` (verifiers, chain verification), :mod:`spectheory.drafts`
  (draft schemes), :mod:`spectheory.audit` (exact and statistical audits),
  :mod:`spectheory.bounds` (optimal acceptance), :mod:`spectheory.models` (toy and real
  models), :mod:`spectheory.testing` (hypothesis strategies and a conformance check),
  :mod:`spectheory.sampling` (sampling without replacement, stochastic beam search),
  :mod:`spectheory.trees` (draft trees and tree verification), :mod:`spectheory.parallel`
  (sharded execution).
"""

from spectheory._checks import checked, checkify
from spectheory._registry import (ChainVerifier, DraftScheme, Rule, Verifier, VerifyResult, make_verifier, register,
                                  rule, rules)
from spectheory import drafts, verify, audit, models, testing, bounds, parallel, sampling, trees, decode  # noqa: E402
from spectheory import _builtin_rules  # noqa: E402,F401  (registers the built-in rules)
from spectheory.decode import generate  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ChainVerifier",
    "DraftScheme",
    "Rule",
    "Verifier",
    "VerifyResult",
    "make_verifier",
    "register",
    "rule",
    "rules",
    "checked",
    "checkify",
    "generate",
    "drafts",
    "verify",
    "audit",
    "models",
    "testing",
    "bounds",
    "parallel",
    "sampling",
    "trees",
    "decode",
]
