"""The rule contract: draft schemes, verifiers, rules and the registry.

Every acceptance rule in spectheory is a :class:`Rule`: a :class:`DraftScheme` (how the
``n`` drafts are drawn from the draft law ``q``) paired with a :class:`Verifier` (how the
target law ``p`` decides which token to emit given those drafts). The verifier is described
exactly by its *kernel* ``K(y | drafts)``; the exact audit (:func:`spectheory.audit.exact`)
enumerates the draft law against that kernel.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax

__all__ = [
    "DraftScheme",
    "Verifier",
    "VerifyResult",
    "Rule",
    "register",
    "rule",
    "rules",
]


class VerifyResult(NamedTuple):
    """Outcome of verifying one position.

    Attributes:
      token: the emitted token id.  # shape=(), dtype=int32
      index: position (0-based) of the accepted draft in the draft tuple, or ``-1`` when the
        token was drawn from the residual law.  # shape=(), dtype=int32
    """

    token: jax.Array
    index: jax.Array


class DraftScheme(NamedTuple):
    """How a tuple of ``n`` drafts is drawn from a draft law ``q`` over ``V`` tokens.

    Attributes:
      name: short identifier, e.g. ``"iid"``.
      sample: ``sample(key, q, n) -> int32[n]``, pure JAX, jit-clean for static ``n``.
      law: ``law(q, n) -> (tuples int[M, n], probs float[M])``, the exact joint law of the
        ordered draft tuple (host-side, NumPy, float64). Only tuples of positive probability
        are listed.
      min_n: smallest supported number of drafts.
      max_n: ``max_n(V) -> int | None``: largest supported ``n`` for vocabulary size ``V``
        (``None`` means unbounded).
      replacement: whether drafts are drawn with replacement (used to pair tree node rules
        with child laws).
    """

    name: str
    sample: Callable
    law: Callable
    min_n: int = 1
    max_n: Callable[[int], Optional[int]] = lambda V: None
    replacement: bool = True

    def supports(self, n: int, V: int) -> bool:
        """Whether this scheme can draw ``n`` drafts over a vocabulary of ``V`` tokens."""
        hi = self.max_n(V)
        return n >= self.min_n and (hi is None or n <= hi)


class Verifier(NamedTuple):
    """A lossless acceptance rule for one position, as pure functions.

    Attributes:
      verify: ``verify(key, p, q, drafts) -> VerifyResult``; equal to
        ``verify_with_uniforms(jax.random.uniform(key, (num_uniforms(n),)), p, q, drafts)``.
      kernel: ``kernel(p, q, drafts) -> float[V]``, the exact law of the emitted token given
        the drafts.
      verify_with_uniforms: ``verify_with_uniforms(u, p, q, drafts) -> VerifyResult`` with
        ``u`` a float array of shape ``(num_uniforms(n),)`` of i.i.d. U[0, 1) noise: the same
        decisions for the same ``u``, in any framework.
      num_uniforms: ``num_uniforms(n) -> int``, how many uniforms one position consumes.
      acceptance: optional closed form ``acceptance(p, q, n) -> float`` of the acceptance
        rate under the paired draft scheme, or ``None`` when only enumeration gives it.
      host_only: ``True`` for verifiers that run on the host (e.g. LP-based) and cannot be
        traced by ``jax.jit``.
    """

    verify: Callable
    kernel: Callable
    verify_with_uniforms: Callable
    num_uniforms: Callable[[int], int]
    acceptance: Optional[Callable] = None
    host_only: bool = False


class Rule(NamedTuple):
    """A named acceptance rule: a draft scheme and the verifier built for it.

    Attributes:
      name: registry name, e.g. ``"single"``.
      drafts: the :class:`DraftScheme` whose law the verifier assumes.
      verifier: the :class:`Verifier`.
      fixed_n: if not ``None``, the only number of drafts the rule is defined for.
      description: one line shown by ``spectheory compare``.
    """

    name: str
    drafts: DraftScheme
    verifier: Verifier
    fixed_n: Optional[int] = None
    description: str = ""

    def supports(self, n: int, V: int) -> bool:
        """Whether the rule is defined for ``n`` drafts over ``V`` tokens."""
        if self.fixed_n is not None and n != self.fixed_n:
            return False
        return self.drafts.supports(n, V)


_REGISTRY: dict[str, Rule] = {}


def register(new_rule: Rule, *, overwrite: bool = False) -> Rule:
    """Add ``new_rule`` to the registry so that audits, the conformance suite and
    ``spectheory compare`` pick it up.

    Args:
      new_rule: the :class:`Rule` to register.
      overwrite: replace an existing rule of the same name instead of raising.

    Returns:
      ``new_rule``.

    Raises:
      ValueError: if a rule of that name exists and ``overwrite`` is false.
    """
    if not isinstance(new_rule, Rule):
        raise TypeError(f"register expects a spectheory.Rule, got {type(new_rule).__name__}")
    if new_rule.name in _REGISTRY and not overwrite:
        raise ValueError(f"a rule named {new_rule.name!r} is already registered")
    _REGISTRY[new_rule.name] = new_rule
    return new_rule


def rule(name: str) -> Rule:
    """Return the registered :class:`Rule` called ``name``.

    >>> import spectheory
    >>> spectheory.rule("single").drafts.name
    'iid'
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown rule {name!r}; registered rules: {known}") from None


def rules() -> list[str]:
    """Names of all registered rules, in registration order."""
    return list(_REGISTRY)
