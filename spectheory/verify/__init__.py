"""Verifiers: one-position acceptance rules and chain verification.

One-position verifiers follow the :class:`spectheory.Verifier` contract (``verify``,
``kernel``, ``verify_with_uniforms``); chain verification (token by token, or jointly by block
verification) takes per-position laws for a chain of ``gamma`` drafted tokens. All are pure
JAX, jit- and vmap-clean.
"""

from spectheory.verify._single import (
    SINGLE,
    single_acceptance,
    single_kernel,
    single_verify,
    single_verify_with_uniforms,
)
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
