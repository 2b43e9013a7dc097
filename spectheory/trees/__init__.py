"""Draft trees and tree verification.

* :class:`DraftTree`: a draft tree as static arrays (parent, depth, token, children table),
  usable under ``jit``/``vmap``; built on the host (:func:`tree_from_parents`) or drawn from a
  draft model by :func:`iid_tree` (SpecInfer/SpecTr), :func:`gumbel_tree` (RSD-C),
  :func:`beam_tree` (RSD-S) and :func:`greedy_tree`;
* :func:`tree_verify`: a registered one-position rule at every node, checked against the
  children's law (:func:`check_pairing`); :func:`tree_kernel` is its exact law for a fixed
  tree, and :func:`spectheory.audit.exact_tree` audits it at sequence level.
"""

from spectheory.trees._tree import (
    SCHEMES,
    DraftTree,
    beam_tree,
    greedy_tree,
    gumbel_tree,
    iid_tree,
    node_paths,
    table_laws,
    tree_from_parents,
)
from spectheory.trees._verify import (
    SCHEME_NAMES,
    TreeResult,
    check_pairing,
    check_scheme,
    tree_kernel,
    tree_num_uniforms,
    tree_verify,
    tree_verify_with_uniforms,
)

__all__ = [
    "SCHEMES",
    "DraftTree",
    "beam_tree",
    "greedy_tree",
    "gumbel_tree",
    "iid_tree",
    "node_paths",
    "table_laws",
    "tree_from_parents",
    "SCHEME_NAMES",
    "TreeResult",
    "check_pairing",
    "check_scheme",
    "tree_kernel",
    "tree_num_uniforms",
    "tree_verify",
    "tree_verify_with_uniforms",
]
