"""Draft trees and tree verification.

* :class:`DraftTree`: a draft tree as static arrays (parent, depth, token, children table),
  usable under ``jit``/``vmap``, carrying the :class:`spectheory.DraftScheme` its children
  are drawn by; built on the host (:func:`tree_from_parents`), drawn from a draft model by
  :func:`draft_tree` (any scheme with a tree child sampler: i.i.d. for SpecInfer/SpecTr,
  without replacement for RSD-C, greedy for Hu et al. 2025) or :func:`beam_tree` (RSD-S);
* :func:`children_table`: the one routine building a tree's children table from its parent
  array (batched, jit-clean); :func:`grow_tree`: the one level-by-level growth routine,
  batched over rows, with a caller-supplied ``expand`` (a lookup, or a tree-mode draft-model
  call in generation);
* :func:`tree_verify`: a registered one-position rule at every node, checked against the
  children's scheme (:func:`check_pairing`); :func:`tree_kernel` is its exact law for a fixed
  tree, and :func:`spectheory.audit.exact_tree` audits it at sequence level.
"""

from spectheory.trees._tree import (
    DraftTree,
    beam_tree,
    children_table,
    draft_tree,
    grow_tree,
    node_paths,
    table_laws,
    tree_from_parents,
)
from spectheory.trees._verify import (
    TreeResult,
    check_pairing,
    tree_kernel,
    tree_num_uniforms,
    tree_verify,
    tree_verify_with_uniforms,
)

__all__ = [
    "DraftTree",
    "beam_tree",
    "children_table",
    "draft_tree",
    "grow_tree",
    "node_paths",
    "table_laws",
    "tree_from_parents",
    "TreeResult",
    "check_pairing",
    "tree_kernel",
    "tree_num_uniforms",
    "tree_verify",
    "tree_verify_with_uniforms",
]
