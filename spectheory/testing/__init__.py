"""Tools for auditing verifiers, importable by other projects.

* hypothesis strategies :func:`prob_vectors` and :func:`prob_pairs` covering the edge cases
  verifiers get wrong (exact zeros, one-hot laws, ``p == q``, near-degenerate residuals,
  large vocabularies);
* :func:`check_lossless`, a conformance check for any verifier given as a plain function;
* :data:`naive_independent_verifier`, a deliberately wrong verifier to see the checks fail.

Example, in another project's test suite::

    from spectheory.testing import check_lossless
    check_lossless(my_verify, p, q, n=2, drafts="iid", noise="key")
"""

from spectheory.testing._strategies import prob_pairs, prob_vectors
from spectheory.testing._conformance import (
    LosslessReport,
    check_lossless,
    naive_independent_rule,
    naive_independent_verifier,
)

__all__ = [
    "prob_pairs",
    "prob_vectors",
    "LosslessReport",
    "check_lossless",
    "naive_independent_rule",
    "naive_independent_verifier",
]
