"""Verifiers: one-position acceptance rules and chain verification.

One-position verifiers are :class:`spectheory.Verifier` values built by
:func:`spectheory.make_verifier` from each rule's mathematics: :data:`SINGLE` (single draft),
the multi-draft :data:`SPECINFER`, :data:`RSD`, :data:`SPECTR` (K-SEQ), :data:`GREEDY_OPTIMAL` (greedy
drafts), :data:`SPECHUB`, and the host-side transport-LP optimum :data:`OPTIMAL`
(:func:`optimal_verifier` for any draft scheme). Each has ``verify(key, p, q, drafts)``,
``verify_with_uniforms(u, p, q, drafts)``, ``kernel(p, q, drafts)``, ``num_uniforms(n)`` and an
optional closed-form ``acceptance`` (also exported as ``*_acceptance``).

Chain verifiers take per-position laws for a chain of ``gamma`` drafted tokens and are
:class:`spectheory.ChainVerifier` values: :data:`TOKEN` (token by token: :func:`chain`,
:func:`chain_with_uniforms`, :func:`chain_kernel`; from logits :func:`chain_from_logits`) and
:data:`BLOCK` (block verification: :func:`block`, :func:`block_with_uniforms`,
:func:`block_kernel`). All but the LP optimum are pure JAX, jit- and vmap-clean.

Called eagerly, every function checks its input and raises a ``ValueError`` naming the
argument. Under ``jax.jit`` or ``jax.vmap`` (eager or not) the value checks are skipped, and
the verifiers keep the jit contract instead: no token id outside ``[0, V)`` except -1; a draft
id outside ``[0, V)`` reads as a token of zero mass, so it is never accepted; when the law a
verifier samples from has no positive finite mass (NaN in ``p`` or ``q``, an all-zero ``p``)
or a uniform is outside [0, 1), the emitted token is the flag -1 (``index`` -1; for a chain
every token is -1 and ``num_accepted`` 0), and kernels and acceptances of NaN laws are NaN;
legal input gives the eager result, at every temperature ``T > 0``. For the checks themselves
inside ``jit``/``vmap``, wrap the call in :func:`spectheory.checked`.
"""

from spectheory.verify._single import SINGLE, single_acceptance
from spectheory.verify._specinfer import SPECINFER, specinfer_acceptance, specinfer_targets, specinfer_thresholds
from spectheory.verify._rsd import RSD, rsd_laws
from spectheory.verify._spectr import BISECTION_STEPS, SPECTR, spectr_acceptance, spectr_residual, spectr_rho
from spectheory.verify._greedy import GREEDY_OPTIMAL, greedy_acceptance
from spectheory.verify._spechub import SPECHUB, spechub_acceptance
from spectheory.verify._optimal import MAX_LP_VARIABLES, OPTIMAL, optimal_verifier
from spectheory.verify._chain import (
    TOKEN,
    ChainResult,
    chain,
    chain_from_logits,
    chain_from_logits_with_uniforms,
    chain_kernel,
    chain_with_uniforms,
)
from spectheory.verify._warp import warp_logits
from spectheory.verify._block import (
    BLOCK,
    BlockQuantities,
    block,
    block_kernel,
    block_quantities,
    block_with_uniforms,
)

__all__ = [
    "warp_logits",
    "SINGLE",
    "single_acceptance",
    "SPECINFER",
    "specinfer_acceptance",
    "specinfer_targets",
    "specinfer_thresholds",
    "RSD",
    "rsd_laws",
    "BISECTION_STEPS",
    "SPECTR",
    "spectr_acceptance",
    "spectr_residual",
    "spectr_rho",
    "GREEDY_OPTIMAL",
    "greedy_acceptance",
    "SPECHUB",
    "spechub_acceptance",
    "MAX_LP_VARIABLES",
    "OPTIMAL",
    "optimal_verifier",
    "TOKEN",
    "ChainResult",
    "chain",
    "chain_from_logits",
    "chain_from_logits_with_uniforms",
    "chain_kernel",
    "chain_with_uniforms",
    "BLOCK",
    "BlockQuantities",
    "block",
    "block_kernel",
    "block_quantities",
    "block_with_uniforms",
]
