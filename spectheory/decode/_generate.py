"""Speculative generation: ``init``, a loop over ``step``, the output (private)."""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from spectheory import _validation as _v
from spectheory._registry import ChainVerifier, Rule
from spectheory.decode._kernel import _check_target, build_step, init, resolve_verifier
from spectheory.decode._laws import LogLaw
from spectheory.decode._proposers import Proposer, chain_proposer, lookup_proposer, tree_proposer
from spectheory.models import CausalLM
from spectheory.verify import TOKEN

__all__ = ["GenerateOutput", "generate"]


class GenerateOutput(NamedTuple):
    r"""What :func:`generate` returns.

    Attributes:
      tokens: the generated tokens of every row (the prompt excluded), at most
        ``max_new_tokens``, cut after the first ``eos_token_id`` (kept), padded with -1.
        # shape=(B, max_new_tokens), dtype=int32
      lengths: number of generated tokens of every row.  # shape=(B,), dtype=int32
      accepted: accepted drafts of every row at every step (``0..D``), -1 where the row had
        already finished.  # shape=(steps, B), dtype=int32
      target_calls: number of target ``logits`` calls in the decoding loop (one per step; the
        prefill call on the prompts is not counted).  # Python int
      draft_calls: number of draft ``logits`` calls in the decoding loop (``gamma`` per step
        for a chain, the tree depth per step for a tree, 0 for prompt lookup; prefill not
        counted).  # Python int

    The mean number of tokens per target call is
    :math:`\mathrm{sum(lengths)} / \mathrm{target\_calls}` when every row runs the same
    number of steps, and at most :math:`D + 1`.

    >>> import jax, spectheory
    >>> from spectheory.models import TableLM, TableCausalLM
    >>> lm = TableCausalLM(TableLM.context_free([0.5, 0.3, 0.2]))
    >>> out = spectheory.generate(jax.random.key(0), lm, lm, [[0]], gamma=2, max_new_tokens=6)
    >>> out.accepted.tolist(), out.target_calls, out.draft_calls  # draft == target: all accepted
    ([[2], [2]], 2, 4)

    References:
      Leviathan et al. 2023 (arXiv 2211.17192) (tokens per target call).
    """

    tokens: jax.Array
    lengths: jax.Array
    accepted: jax.Array
    target_calls: int
    draft_calls: int


def _default_branching(r: Rule, gamma: int, branching, V: int) -> tuple[int, ...]:
    """Per-level fan-out of a tree rule: ``(n,) + (1,) * (gamma - 1)`` with ``n`` the rule's
    fixed ``n`` (or 2), ``(n,) * gamma`` when the rule is undefined for one draft; an int
    ``b`` means ``(b,) * gamma``."""
    if branching is None:
        b = r.fixed_n if r.fixed_n is not None else max(2, r.drafts.min_n)
        branching = (b,) + ((1 if r.supports(1, V) else b),) * (gamma - 1)
    if isinstance(branching, (int, np.integer)) and not isinstance(branching, bool):
        branching = (int(branching),) * gamma
    return _v.check_branching(branching)


def _proposer(target: CausalLM, draft, verifier: Union[ChainVerifier, Rule], gamma, branching) -> Proposer:
    """The proposer ``generate`` builds from its ``draft`` argument."""
    if isinstance(draft, Proposer):
        if branching is not None:
            raise ValueError("branching: a Proposer fixes its own branching; pass branching=None")
        return draft
    gamma = _v.check_count(gamma, "gamma")
    if branching is not None and not isinstance(branching, (int, np.integer)):
        branching = _v.check_branching(branching)
    if isinstance(draft, CausalLM) and isinstance(verifier, Rule):
        if verifier.drafts.children is None:
            raise ValueError(f"verifier: rule {verifier.name!r} draws its drafts by {verifier.drafts.name!r}, which "
                             "a draft tree cannot carry (no DraftScheme.children)")
        return tree_proposer(draft, verifier.drafts,
                             _default_branching(verifier, int(gamma), branching, int(target.vocab_size)))
    if branching is not None:
        raise ValueError("branching: only meaningful for a tree (a draft CausalLM with a Rule verifier)")
    if isinstance(draft, CausalLM):
        return chain_proposer(draft, int(gamma))
    if callable(draft):
        return lookup_proposer(draft, int(gamma))
    raise ValueError(f"draft: expected a CausalLM, a lookup drafter fn(context, length, *, num_drafts) or a "
                     f"Proposer, got {type(draft).__name__}")


@functools.partial(jax.jit, static_argnames=("m",))
def _output_tokens(tokens, prompt_lengths, num_generated, m: int):
    j = jnp.arange(m)[None, :]
    cols = jnp.minimum(prompt_lengths[:, None] + j, tokens.shape[1] - 1)
    return jnp.where(j < num_generated[:, None], jnp.take_along_axis(tokens, cols, axis=1), -1)


def generate(
    key: jax.Array,
    target: CausalLM,
    draft: Union[CausalLM, Callable, Proposer],
    prompts: Union[Sequence[Sequence[int]], ArrayLike],
    *,
    verifier: Union[ChainVerifier, Rule, str] = TOKEN,
    gamma: int = 4,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: Optional[int] = None,
    top_p: Optional[float] = None,
    eos_token_id: Optional[int] = None,
    branching: Optional[Union[int, Sequence[int]]] = None,
) -> GenerateOutput:
    r"""Speculative generation: draft, verify with the target, losslessly, until every row is done.

    ``state = init(...)``, then ``state, info = step(k, state)`` with a fresh key per step
    (``key, k = jax.random.split(key)``) while a row is active (see
    :func:`~spectheory.decode.build_step` for one step). Each emitted sequence has exactly the
    law of sampling the warped target :math:`\tilde p` token by token,

    .. math:: \Pr(y_{1:m} \mid c) = \prod_{j=1}^{m} \tilde p(y_j \mid c, y_{<j}),

    :math:`\tilde p = \mathrm{softmax}(\mathrm{warp}(\ell^p))` with
    :func:`~spectheory.verify.warp_logits` (temperature, then top-k, then top-p); the drafts
    are drawn from the draft law warped the same way and the verifier sees exactly those two
    laws (verifying warped drafts against unwarped probabilities is the classic production
    bug). ``temperature = 0`` is greedy decoding of the target.

    What drafts and what verifies:

    * ``draft`` a :class:`~spectheory.models.CausalLM` and ``verifier`` a
      :class:`~spectheory.ChainVerifier` (``TOKEN``, ``BLOCK``): a chain of ``gamma`` drafts
      (:func:`~spectheory.decode.chain_proposer`);
    * ``draft`` a CausalLM and ``verifier`` a :class:`~spectheory.Rule` or a registered rule
      name: a draft tree (:func:`~spectheory.decode.tree_proposer`) with the rule's draft
      scheme and ``branching``, default ``(n,) + (1,) * (gamma - 1)`` with ``n =
      rule.fixed_n`` (or 2), or ``(n,) * gamma`` when the rule is undefined for one draft;
    * ``draft`` a lookup drafter ``fn(context, length, *, num_drafts)`` (e.g.
      :func:`spectheory.models.prompt_lookup`): ``gamma`` deterministic drafts with point-mass
      laws (:func:`~spectheory.decode.lookup_proposer`; a rule must assume ``"iid"``, e.g.
      ``"single"``);
    * ``draft`` a :class:`~spectheory.decode.Proposer`: used as is (``gamma`` and
      ``branching`` are its own).

    Args:
      key: a ``jax.random`` key (required, first like every random function).
      target: the target :class:`~spectheory.models.CausalLM` (``V`` logits per position).
      draft: see above.
      prompts: ``B`` prompts: a list of non-empty int sequences (ragged) or ``int[B, L]``.
      verifier: a ChainVerifier, a Rule, or a registered rule name (a string always names a
        rule); see :func:`~spectheory.decode.supported_verifiers`. A Rule that is not the
        registered object of its name must pass the same structure check and exact audit as
        :func:`spectheory.register` (run once per rule, the verdict cached).
      gamma: drafts per step (chain length, or default tree depth), ``>= 1``.
      max_new_tokens: tokens to generate per row, ``>= 1``.
      temperature: ``>= 0``; 0 is greedy. top_k: optional positive int. top_p: optional float
        in ``(0, 1]``.
      eos_token_id: optional; a row stops after emitting it (the EOS is kept).
      branching: tree rules only: per-level fan-outs (their number is the depth; overrides
        ``gamma``), or one int for every level.

    Returns:
      :class:`GenerateOutput` ``(tokens int32[B, max_new_tokens], lengths int32[B],
      accepted int32[steps, B], target_calls, draft_calls)``.

    Raises:
      ValueError: naming the argument (checked before any model call where the argument
        allows): a bad key, prompt, budget, warp, branching or model, an unknown rule name, a
        rule that fails the registration audit (e.g.
        :data:`spectheory.testing.naive_independent_rule`), or a verifier that cannot verify the
        drafts (a chain verifier on a tree, a rule assuming another draft scheme, a host-only
        rule).

    Example:
      >>> import jax, spectheory
      >>> from spectheory.models import TableLM, TableCausalLM
      >>> p = TableCausalLM(TableLM.context_free([0.5, 0.3, 0.2]))
      >>> q = TableCausalLM(TableLM.context_free([0.4, 0.4, 0.2]))
      >>> out = spectheory.generate(jax.random.key(0), p, q, [[0], [1, 2]], gamma=3, max_new_tokens=5)
      >>> out.tokens.shape, out.lengths.tolist()
      ((2, 5), [5, 5])
      >>> out = spectheory.generate(jax.random.key(0), p, q, [[0]], verifier="specinfer", max_new_tokens=5)
      >>> out.draft_calls == 4 * out.target_calls  # a tree of depth gamma = 4, branching (2, 1, 1, 1)
      True

    References:
      Leviathan, Kalman, Matias, Fast Inference from Transformers via Speculative Decoding,
      ICML 2023 (arXiv 2211.17192); Chen et al. 2023 (arXiv 2302.01318); Sun et al., Block
      Verification Accelerates Speculative Decoding, ICLR 2025 (arXiv 2403.10444); Miao et
      al., SpecInfer (arXiv 2305.09781) for tree verification; Saxena 2023, prompt lookup.
    """
    key = _v.check_key(key)
    _check_target(target)
    max_new_tokens = _v.check_count(max_new_tokens, "max_new_tokens")
    LogLaw.checked(temperature, top_k, top_p)  # before any model call
    verifier = resolve_verifier(verifier)
    proposer = _proposer(target, draft, verifier, gamma, branching)
    state = init(target, proposer, prompts, max_new_tokens=max_new_tokens, eos_token_id=eos_token_id)
    step = build_step(target, proposer, verifier, temperature=temperature, top_k=top_k, top_p=top_p)
    accepted, target_calls, draft_calls = [], 0, 0
    while np.any(np.asarray(state.active)):
        key, k = jax.random.split(key)
        state, info = step(k, state)
        accepted.append(info.num_accepted)
        target_calls += info.target_calls
        draft_calls += info.draft_calls
    B = state.tokens.shape[0]
    acc = jnp.stack(accepted) if accepted else jnp.zeros((0, B), jnp.int32)
    tokens = _output_tokens(state.tokens, state.prompt_lengths, state.num_generated, int(max_new_tokens))
    return GenerateOutput(tokens, state.num_generated, acc, target_calls, draft_calls)
