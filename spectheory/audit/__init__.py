"""Audits: exact (enumerated) proofs of losslessness and statistical tests of samplers.

Every statistical audit states what it can see: ``detectable_tv``, the smallest total-variation
deviation from the tested law it rejects with probability at least 0.99 at its level and sample
size (derivation in ``spectheory/audit/_power.py``); the audits refuse sample sizes whose
detectable TV exceeds 0.5 and check the claim with a seeded negative control.
"""

from spectheory.audit._exact import ExactAudit, exact, kernel_table
from spectheory.audit._acceptance import AUTO_EXACT_LIMIT, Acceptance, acceptance
from spectheory.audit._chain import ChainAudit, exact_chain, sequence_error
from spectheory.audit._tree import TreeAudit, exact_tree
from spectheory.audit._chi_square import ChiSquareResult, chi_square, chi_square_test, sample_tokens

__all__ = [
    "AUTO_EXACT_LIMIT",
    "Acceptance",
    "acceptance",
    "ExactAudit",
    "exact",
    "kernel_table",
    "ChainAudit",
    "exact_chain",
    "sequence_error",
    "TreeAudit",
    "exact_tree",
    "ChiSquareResult",
    "chi_square",
    "chi_square_test",
    "sample_tokens",
]
