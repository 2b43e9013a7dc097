"""Sampling without replacement: Gumbel-top-k and stochastic beam search.

* :func:`gumbel_top_k` draws ``k`` distinct tokens in order (the Plackett-Luce law,
  :func:`plackett_luce_log_prob`; the enumerated law is the without-replacement draft
  scheme's, :func:`spectheory.drafts.without_replacement_law`);
* :func:`stochastic_beam_search` draws ``W`` distinct sequences from an autoregressive model
  (Kool et al. 2019), jit-clean over a next-token log-probability function, e.g.
  :func:`table_log_probs_fn` for a :class:`~spectheory.models.TableLM`.
"""

from spectheory.sampling._gumbel import (
    gumbel_top_k,
    gumbel_top_k_with_gumbels,
    plackett_luce_log_prob,
)
from spectheory.sampling._beam import (
    BeamResult,
    sequence_law,
    stochastic_beam_search,
    stochastic_beam_search_with_gumbels,
    table_log_probs_fn,
)

__all__ = [
    "gumbel_top_k",
    "gumbel_top_k_with_gumbels",
    "plackett_luce_log_prob",
    "BeamResult",
    "sequence_law",
    "stochastic_beam_search",
    "stochastic_beam_search_with_gumbels",
    "table_log_probs_fn",
]
