"""The laws: the ONE place where logits become sampling laws, for drafting and for verifying.

Speculative decoding is lossless for the *warped* target law only if the drafts are samples of
the draft law warped the same way and the verifier is handed exactly those two warped laws.
Every proposer draws its drafts from :func:`draft_log_probs` (through the ``log_law`` value
:func:`~spectheory.decode.build_step` gives it) and every step scores the target with
:func:`verify_probs`; both call :func:`~spectheory.verify.warp_logits` with the same static
``(temperature, top_k, top_p)``. Verifying warped drafts against unwarped probabilities (or the
reverse) is the classic production bug: it silently changes the output law
(``tests/decode/test_generate.py`` shows a chi-square test rejecting it).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import numpy as np

from spectheory.verify._warp import check_warp, warp_logits

__all__ = ["LogLaw", "draft_log_probs", "verify_probs"]


def draft_log_probs(logits, temperature: float, top_k: Optional[int], top_p: Optional[float]) -> jax.Array:
    r"""Log of the law drafts are sampled from: the *warped* draft law,
    :math:`\log \tilde q = \mathrm{log\_softmax}(\mathrm{warp}(\ell^q))` (float[..., V])."""
    return jax.nn.log_softmax(warp_logits(logits, temperature, top_k, top_p), axis=-1)


def verify_probs(logits, temperature: float, top_k: Optional[int], top_p: Optional[float]) -> jax.Array:
    r"""The law handed to the verifier, :math:`\tilde p = \mathrm{softmax}(\mathrm{warp}(\ell^p))`
    (float[..., V]): the same warp as :func:`draft_log_probs` (whose ``exp`` is the ``q`` of a
    proposal) and as the target's sampling law. Keeping drafting and verifying on this one pair
    of functions is what makes generation lossless for the warped target."""
    return jax.nn.softmax(warp_logits(logits, temperature, top_k, top_p), axis=-1)


class LogLaw(NamedTuple):
    r"""The warped draft law as a value: ``log_law(logits float[..., V]) -> float[..., V]`` is
    :func:`draft_log_probs` with this ``(temperature, top_k, top_p)``.

    A :class:`~spectheory.decode.Proposer` receives one from the step and must draw its drafts
    from it (and report ``exp`` of it as the draft law ``q``); being a hashable value, it can be
    a static argument of ``jax.jit`` (one compilation per warp, not per call).

    .. math:: \mathrm{log\_law}(\ell) = \mathrm{log\_softmax}(\mathrm{warp}(\ell)).

    Attributes:
      temperature: static float ``>= 0`` (0 is greedy).
      top_k: static positive int or ``None``.
      top_p: static float in ``(0, 1]`` or ``None``.

    >>> import jax.numpy as jnp
    >>> law = LogLaw(top_k=1)
    >>> jnp.exp(law(jnp.log(jnp.array([0.2, 0.5, 0.3])))).tolist()
    [0.0, 1.0, 0.0]
    >>> law == LogLaw(1.0, 1, None) and hash(law) == hash(LogLaw(1.0, 1, None))
    True

    References:
      Holtzman et al., ICLR 2020 (top-p); Fan et al., ACL 2018 (top-k); Leviathan et al. 2023
      (arXiv 2211.17192) (the same warp on both sides).
    """

    temperature: float = 1.0
    top_k: Optional[int] = None
    top_p: Optional[float] = None

    def __call__(self, logits) -> jax.Array:
        return draft_log_probs(logits, self.temperature, self.top_k, self.top_p)

    @classmethod
    def checked(cls, temperature=1.0, top_k=None, top_p=None) -> "LogLaw":
        """Validate the warp (``ValueError`` naming the argument) and build the value:
        ``temperature`` a real number ``>= 0`` and ``top_p`` one in ``(0, 1]`` (no bools or
        strings), ``top_k`` a positive int or ``None``."""
        for name, x in (("temperature", temperature), ("top_p", top_p)):
            if x is None and name == "top_p":
                continue
            if isinstance(x, (bool, np.bool_, str, bytes)) or not (isinstance(x, jax.core.Tracer) or np.ndim(x) == 0):
                raise ValueError(f"{name}: expected a real number, got {x!r}")
            if not isinstance(x, jax.core.Tracer):
                try:
                    float(x)
                except (TypeError, ValueError):
                    raise ValueError(f"{name}: expected a real number, got {x!r}") from None
        return cls(*check_warp(temperature, top_k, top_p))
