"""Optimal acceptance bounds, exact LP audits, speed models and vocabulary trimming."""

from spectheory.bounds._lp import LPAcceptance, collapse_draft_sets, lp_acceptance
from spectheory.bounds._speed import (
    OptimalGamma,
    expected_tokens_per_call,
    optimal_gamma,
    tree_acceptance_probabilities,
    tree_expected_length,
    walltime_improvement,
)
from spectheory.bounds._vocabtrim import trim_draft, trimmed_acceptance, trimmed_optimal_acceptance
from spectheory.bounds._subset import SubsetBound, subset_bound
from spectheory.bounds._optimal import (
    SCHEMES,
    OptimalAcceptance,
    all_in_probability,
    optimal_acceptance,
)

__all__ = [
    "OptimalGamma",
    "expected_tokens_per_call",
    "optimal_gamma",
    "tree_acceptance_probabilities",
    "tree_expected_length",
    "walltime_improvement",
    "trim_draft",
    "trimmed_acceptance",
    "trimmed_optimal_acceptance",
    "LPAcceptance",
    "SubsetBound",
    "collapse_draft_sets",
    "lp_acceptance",
    "subset_bound",
    "SCHEMES",
    "OptimalAcceptance",
    "all_in_probability",
    "optimal_acceptance",
]
