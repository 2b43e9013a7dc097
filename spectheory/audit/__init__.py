"""Audits: exact (enumerated) proofs of losslessness and statistical tests of samplers."""

from spectheory.audit._exact import ExactAudit, exact, kernel_table
from spectheory.audit._acceptance import AUTO_EXACT_LIMIT, Acceptance, acceptance
from spectheory.audit._chain import ChainAudit, chain_methods, exact_chain, register_chain_method, sequence_error
from spectheory.audit._tree import TreeAudit, exact_tree, greedy_law
from spectheory.audit._chi_square import ChiSquareResult, chi_square, chi_square_test, sample_tokens

__all__ = [
    "AUTO_EXACT_LIMIT",
    "Acceptance",
    "acceptance",
    "ExactAudit",
    "exact",
    "kernel_table",
    "ChainAudit",
    "chain_methods",
    "exact_chain",
    "register_chain_method",
    "sequence_error",
    "TreeAudit",
    "exact_tree",
    "greedy_law",
    "ChiSquareResult",
    "chi_square",
    "chi_square_test",
    "sample_tokens",
]
