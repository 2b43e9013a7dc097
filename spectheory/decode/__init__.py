"""Decoding: speculative generation as a blackjax-style kernel, and ``generate`` over it.

* :func:`init` builds a :class:`DecodeState` (prompts written, target and proposer
  prefilled) and :func:`build_step` the kernel ``step(key, state) -> (DecodeState,
  StepInfo)``; :func:`generate` is ``init`` plus a loop over ``step``
  (:class:`GenerateOutput`);
* a :class:`Proposer` says where the drafts come from (:func:`chain_proposer`,
  :func:`tree_proposer`, :func:`lookup_proposer`, or your own); every :class:`Proposal` is a
  draft tree (:func:`chain_tree` for chains) with its draft laws, drawn from the warped draft
  law the step hands over as a :class:`LogLaw`;
* the verifier is a :class:`spectheory.ChainVerifier` (:data:`spectheory.verify.TOKEN`,
  :data:`spectheory.verify.BLOCK`) for chains, or a :class:`spectheory.Rule` at every node
  of a tree (:func:`supported_verifiers`).
"""

from spectheory.decode._laws import LogLaw
from spectheory.decode._proposers import (
    DraftModelState,
    Proposal,
    Proposer,
    chain_proposer,
    chain_tree,
    lookup_proposer,
    tree_proposer,
)
from spectheory.decode._kernel import DecodeState, StepInfo, build_step, init, supported_verifiers
from spectheory.decode._generate import GenerateOutput, generate

__all__ = [
    "DecodeState",
    "StepInfo",
    "init",
    "build_step",
    "supported_verifiers",
    "Proposal",
    "Proposer",
    "DraftModelState",
    "LogLaw",
    "chain_proposer",
    "tree_proposer",
    "lookup_proposer",
    "chain_tree",
    "GenerateOutput",
    "generate",
]
