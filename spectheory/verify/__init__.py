"""Verifiers: one-position acceptance rules and chain verification.

One-position verifiers (single draft; multi-draft SpecInfer, RSD, SpecTr K-SEQ, greedy
drafts, SpecHub; the host-side transport-LP optimum) follow the :class:`spectheory.Verifier`
contract (``verify``, ``kernel``, ``verify_with_uniforms``); chain verification (token by
token, or jointly by block verification) takes per-position laws for a chain of ``gamma``
drafted tokens. All but the LP optimum are pure JAX, jit- and vmap-clean.
"""

from spectheory.verify._single import (
    SINGLE,
    single_acceptance,
    single_kernel,
    single_verify,
    single_verify_with_uniforms,
)
from spectheory.verify._specinfer import (
    SPECINFER,
    specinfer_acceptance,
    specinfer_kernel,
    specinfer_targets,
    specinfer_verify,
    specinfer_verify_with_uniforms,
)
from spectheory.verify._rsd import RSD, rsd_kernel, rsd_laws, rsd_verify, rsd_verify_with_uniforms
from spectheory.verify._spectr import (
    BISECTION_STEPS,
    SPECTR,
    spectr_acceptance,
    spectr_kernel,
    spectr_residual,
    spectr_rho,
    spectr_verify,
    spectr_verify_with_uniforms,
)
from spectheory.verify._greedy import (
    GREEDY,
    greedy_acceptance,
    greedy_kernel,
    greedy_verify,
    greedy_verify_with_uniforms,
)
from spectheory.verify._spechub import (
    SPECHUB,
    spechub_acceptance,
    spechub_kernel,
    spechub_verify,
    spechub_verify_with_uniforms,
)
from spectheory.verify._optimal import MAX_LP_VARIABLES, OPTIMAL, optimal_verifier
from spectheory.verify._chain import (
    ChainResult,
    chain,
    chain_from_logits,
    chain_from_logits_with_uniforms,
    chain_kernel,
    chain_with_uniforms,
)
from spectheory.verify._warp import warp_logits
from spectheory.verify._block import (
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
    "single_kernel",
    "single_verify",
    "single_verify_with_uniforms",
    "SPECINFER",
    "specinfer_acceptance",
    "specinfer_kernel",
    "specinfer_targets",
    "specinfer_verify",
    "specinfer_verify_with_uniforms",
    "RSD",
    "rsd_kernel",
    "rsd_laws",
    "rsd_verify",
    "rsd_verify_with_uniforms",
    "BISECTION_STEPS",
    "SPECTR",
    "spectr_acceptance",
    "spectr_kernel",
    "spectr_residual",
    "spectr_rho",
    "spectr_verify",
    "spectr_verify_with_uniforms",
    "GREEDY",
    "greedy_acceptance",
    "greedy_kernel",
    "greedy_verify",
    "greedy_verify_with_uniforms",
    "SPECHUB",
    "spechub_acceptance",
    "spechub_kernel",
    "spechub_verify",
    "spechub_verify_with_uniforms",
    "MAX_LP_VARIABLES",
    "OPTIMAL",
    "optimal_verifier",
    "ChainResult",
    "chain",
    "chain_from_logits",
    "chain_from_logits_with_uniforms",
    "chain_kernel",
    "chain_with_uniforms",
    "BlockQuantities",
    "block",
    "block_kernel",
    "block_quantities",
    "block_with_uniforms",
]
