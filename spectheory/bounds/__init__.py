"""Optimal acceptance bounds, exact LP audits, speed models and vocabulary trimming.

* :func:`optimal_acceptance` — α* for any draft scheme whose set law is i.i.d., without
  replacement or greedy (``DraftScheme.family``; a scheme object or registered name; pure JAX,
  batched, jit-clean) with the optimal dual set as certificate; :func:`all_in_probability`.
* :func:`subset_bound` and :func:`lp_acceptance` — the independent references for any
  enumerated draft law: brute force over subsets, and the transport LP (POT or cvxpy).
* :func:`expected_tokens_per_call`, :func:`walltime_improvement`, :func:`optimal_gamma`,
  :func:`tree_expected_length` — speed models.
* :func:`trim_draft`, :func:`trimmed_acceptance`, :func:`trimmed_optimal_acceptance` —
  vocabulary trimming of the drafter (VocabTrim).
"""

from spectheory.bounds._lp import LPAcceptance, collapse_draft_sets, lp_acceptance
from spectheory.bounds._optimal import OptimalAcceptance, all_in_probability, optimal_acceptance
from spectheory.bounds._speed import (
    OptimalGamma,
    expected_tokens_per_call,
    optimal_gamma,
    tree_acceptance_probabilities,
    tree_expected_length,
    walltime_improvement,
)
from spectheory.bounds._subset import SubsetBound, subset_bound
from spectheory.bounds._vocabtrim import trim_draft, trimmed_acceptance, trimmed_optimal_acceptance

__all__ = [
    # optimal acceptance
    "OptimalAcceptance",
    "optimal_acceptance",
    "all_in_probability",
    # references for enumerated draft laws
    "SubsetBound",
    "subset_bound",
    "LPAcceptance",
    "lp_acceptance",
    "collapse_draft_sets",
    # speed models
    "expected_tokens_per_call",
    "walltime_improvement",
    "OptimalGamma",
    "optimal_gamma",
    "tree_acceptance_probabilities",
    "tree_expected_length",
    # vocabulary trimming
    "trim_draft",
    "trimmed_acceptance",
    "trimmed_optimal_acceptance",
]
