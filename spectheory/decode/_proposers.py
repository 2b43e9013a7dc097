r"""Proposers: where the drafts of a decoding step come from (private).

A :class:`Proposer` is a NamedTuple of functions, like optax's
``GradientTransformation(init, update)``: ``init`` builds its state once (e.g. a draft model's
cache after reading the prompts), ``propose`` drafts for one step, ``update`` learns what the
verifier accepted. Every proposal is a draft *tree* (a chain is the tree with parents
``[-1, 0, 1, ...]``) together with the draft law every node's children were drawn from.

Three are built in: :func:`chain_proposer` (a draft :class:`~spectheory.models.CausalLM`, one
i.i.d. draft per position, ``gamma`` chain-mode draft calls), :func:`tree_proposer` (a draft
tree grown level by level through the draft model in tree mode by
:func:`spectheory.trees.grow_tree`) and :func:`lookup_proposer` (deterministic drafts from the
context, e.g. :func:`spectheory.models.prompt_lookup`; point-mass draft laws, no draft calls).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from spectheory import drafts as _drafts
from spectheory import _validation as _v
from spectheory import trees as _trees
from spectheory._registry import DraftScheme
from spectheory.drafts import IID
from spectheory.models import CausalLM

__all__ = ["Proposal", "Proposer", "chain_proposer", "tree_proposer", "lookup_proposer"]


class Proposal(NamedTuple):
    r"""The drafts of one step, for every row of the batch.

    Attributes:
      tree: the drafts as a batched :class:`~spectheory.trees.DraftTree` (leading axis ``B``,
        ``N`` node slots, static ``scheme`` and ``max_depth``); a chain of ``gamma`` drafts has
        ``N = gamma`` and parents ``[-1, 0, ..., gamma - 2]``. Rows the step does not decode
        (``active`` false) may hold anything.
      q: the draft law every row of the tree drew its children from: row 0 the root (the
        context), row ``i + 1`` node ``i``; rows without children are ignored (a uniform
        placeholder by convention).  # shape=(B, N+1, V), dtype=float
      draft_calls: number of draft-model ``logits`` calls the proposal cost.  # Python int

    Rows of ``q`` follow the tree: :math:`q[b, 0] = \tilde q(\cdot \mid c_b)` and
    :math:`q[b, i + 1] = \tilde q(\cdot \mid c_b, \mathrm{path}(i))`.

    >>> import jax, jax.numpy as jnp
    >>> from spectheory.models import TableLM, TableCausalLM
    >>> from spectheory.decode import LogLaw, chain_proposer, init
    >>> lm = TableCausalLM(TableLM.context_free([0.5, 0.3, 0.2]))
    >>> prop = chain_proposer(lm, 2)
    >>> s = init(lm, prop, [[0]], max_new_tokens=4)
    >>> proposal, _ = prop.propose(jax.random.key(0), s.proposer_state, s.tokens, s.lengths, s.active, LogLaw())
    >>> proposal.tree.token.shape, proposal.q.shape, proposal.draft_calls
    ((1, 2), (1, 3, 3), 2)

    References:
      Miao et al., SpecInfer (arXiv 2305.09781), Sec. 4 (token trees and their draft laws).
    """

    tree: Any
    q: jax.Array
    draft_calls: int


class Proposer(NamedTuple):
    r"""Where drafts come from: a NamedTuple of functions and two static facts.

    The contract (``B`` rows, ``L`` the length of the token buffer, ``V`` the vocabulary):

    * ``init(tokens int32[B, L], lengths int32[B], vocab_size) -> state``: called once by
      :func:`~spectheory.decode.init`; row ``b``'s prompt is ``tokens[b, :lengths[b]]`` and
      no row ever grows past ``L`` tokens (size caches with it). Raise ``ValueError`` on a
      vocabulary mismatch.
    * ``propose(key, state, tokens, lengths, active, log_law) -> (Proposal, state)``: the
      drafts of one step after row ``b``'s context ``tokens[b, :lengths[b]]``, for the rows
      with ``active[b]``. Sample every draft from ``log_law(draft_logits)`` (a
      :class:`~spectheory.decode.LogLaw`: the *warped* draft law) and report its ``exp`` as
      ``Proposal.q``; a deterministic proposer reports point masses. The tree must have the
      layout ``branching`` describes (``N = b_1 + b_1 b_2 + ...`` slots, children drawn by
      ``scheme``) and, for a chain (every ``b_t = 1``), all ``gamma`` nodes valid.
    * ``update(state, proposal, num_accepted int32[B], nodes int32[B, D], active bool[B])
      -> state``: the verifier accepted, in row ``b``, the ``num_accepted[b]`` nodes
      ``nodes[b, :num_accepted[b]]`` (a root path) and then emitted one more token; the next
      ``propose`` sees all of them in ``tokens``.
    * ``scheme``: the :class:`~spectheory.DraftScheme` the children of every node are drawn
      by (``IID`` for a chain: one draw per position); a tree rule must assume exactly it.
    * ``branching``: static per-level fan-out ``(b_1, ..., b_D)``; ``D`` is the number of
      drafted levels (``(1,) * gamma`` for a chain).

    Losslessness needs only that ``Proposal.q`` be the exact law the children were drawn from,
    given the context: the verifier does the rest.

    Example (a context-free unigram drafter; ``jnp`` arrays all the way):

    >>> import jax, jax.numpy as jnp, spectheory
    >>> from spectheory.decode import Proposal, Proposer, chain_tree
    >>> from spectheory.models import TableLM, TableCausalLM
    >>> logits = jnp.log(jnp.array([0.4, 0.4, 0.2]))
    >>> def propose(key, state, tokens, lengths, active, log_law):
    ...     lq = jnp.broadcast_to(log_law(logits), (tokens.shape[0], 3, 3))  # root + 2 nodes
    ...     drafts = jax.random.categorical(key, lq[:, :2])
    ...     return Proposal(chain_tree(drafts), jnp.exp(lq), 0), state
    >>> unigram = Proposer(lambda tokens, lengths, V: None, propose, lambda s, *_: s,
    ...                    spectheory.drafts.IID, (1, 1))
    >>> target = TableCausalLM(TableLM.context_free([0.5, 0.3, 0.2]))
    >>> out = spectheory.generate(jax.random.key(0), target, unigram, [[0]], max_new_tokens=4)
    >>> out.lengths.tolist()
    [4]

    Attributes:
      init: ``init(tokens, lengths, vocab_size) -> state``.
      propose: ``propose(key, state, tokens, lengths, active, log_law) -> (Proposal, state)``.
      update: ``update(state, proposal, num_accepted, nodes, active) -> state``.
      scheme: the children's :class:`~spectheory.DraftScheme`.
      branching: per-level fan-out, a tuple of positive ints.

    References:
      The (init, update) pair of optax (DeepMind et al., *The DeepMind JAX Ecosystem*, 2020);
      Leviathan et al. 2023 (arXiv 2211.17192); Miao et al., SpecInfer (arXiv 2305.09781).
    """

    init: Callable
    propose: Callable
    update: Callable
    scheme: DraftScheme
    branching: tuple


class DraftModelState(NamedTuple):
    r"""State of :func:`chain_proposer` and :func:`tree_proposer`.

    Attributes:
      cache: the draft model's cache (opaque; used linearly).
      read: how many tokens of every row's context the cache has committed; the rest (1 or 2
        for a chain, up to ``D + 1`` for a tree) is fed at the next step.
        # shape=(B,), dtype=int64 (NumPy, host)

    Pending tokens of row ``b`` at a step: :math:`\mathrm{lengths}[b] - \mathrm{read}[b]`.

    >>> from spectheory.models import TableLM, TableCausalLM
    >>> from spectheory.decode import chain_proposer, init
    >>> lm = TableCausalLM(TableLM.context_free([0.5, 0.5]))
    >>> init(lm, chain_proposer(lm, 2), [[0, 1, 1]], max_new_tokens=2).proposer_state.read.tolist()
    [2]

    References:
      Leviathan et al. 2023 (arXiv 2211.17192) (the draft model's incremental state).
    """

    cache: Any
    read: np.ndarray


# -- helpers ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _chain_layout(gamma: int):
    parent = np.arange(gamma, dtype=np.int32) - 1
    depth = np.arange(1, gamma + 1, dtype=np.int32)
    children, num = _trees.children_table(parent, np.ones(gamma, bool), 1)
    return parent, depth, np.asarray(children, np.int32), np.asarray(num, np.int32)


def chain_tree(drafts, scheme: DraftScheme = IID):
    r"""The batched :class:`~spectheory.trees.DraftTree` of a draft chain: node ``i`` is draft
    ``x_{i+1}``, its parent node ``i - 1`` (the root for ``i = 0``),

    .. math:: \mathrm{parent} = [-1, 0, 1, \dots, \gamma - 2], \qquad
        \mathrm{depth} = [1, 2, \dots, \gamma].

    Args:
      drafts: ``int[B, gamma]`` drafted tokens (every node valid).
      scheme: the children's :class:`~spectheory.DraftScheme` (default ``IID``: one draw from
        the draft law per position).

    Returns:
      :class:`~spectheory.trees.DraftTree` with leading axis ``B`` and ``N = gamma`` nodes.

    >>> import jax.numpy as jnp
    >>> t = chain_tree(jnp.array([[2, 0, 1]]))
    >>> t.parent.tolist(), t.num_children.tolist(), t.max_depth
    ([[-1, 0, 1]], [[1, 1, 1, 0]], 3)

    References:
      Miao et al., SpecInfer (arXiv 2305.09781), Sec. 4 (a sequence is a one-branch tree).
    """
    drafts = jnp.asarray(drafts)
    if drafts.ndim != 2 or not jnp.issubdtype(drafts.dtype, jnp.integer):
        raise ValueError(f"drafts: expected int[B, gamma], got {drafts.dtype}{list(drafts.shape)}")
    B, g = drafts.shape
    parent, depth, children, num = _chain_layout(int(g))
    return _trees.DraftTree(
        token=drafts if drafts.dtype == jnp.int32 else drafts.astype(jnp.int32),
        parent=np.broadcast_to(parent, (B, g)),
        depth=np.broadcast_to(depth, (B, g)),
        children=np.broadcast_to(children, (B,) + children.shape),
        num_children=np.broadcast_to(num, (B,) + num.shape),
        valid=np.ones((B, g), bool),
        scheme=scheme,
        max_depth=int(g),
    )


def _check_lm(lm, name: str) -> CausalLM:
    """A :class:`~spectheory.models.CausalLM` with a positive int ``vocab_size``; else
    ``ValueError`` naming the argument."""
    if not isinstance(lm, CausalLM):
        raise ValueError(f"{name}: expected a CausalLM, got {type(lm).__name__}")
    V = lm.vocab_size
    if isinstance(V, bool) or not isinstance(V, (int, np.integer)) or V < 1:
        raise ValueError(f"{name}: vocab_size must be a positive int, got {V!r}")
    return lm


def prefill(lm: CausalLM, tokens: np.ndarray, lengths: np.ndarray):
    """A cache of ``lm`` sized ``tokens.shape[1]`` holding every row's context but its last
    token (the first step feeds that one)."""
    B, L = tokens.shape
    cache = lm.init_cache(B, L)
    n = lengths - 1
    T = int(n.max(initial=0))
    if T > 0:
        _, cache = lm.logits(tokens[:, :T], cache, valid=np.arange(T)[None, :] < n[:, None])
    return cache


def _lm_init(lm: CausalLM, name: str):
    def init(tokens, lengths, vocab_size) -> DraftModelState:
        if int(lm.vocab_size) != int(vocab_size):
            raise ValueError(f"{name}: vocab_size {lm.vocab_size} != the target's {vocab_size}")
        tokens, lengths = np.asarray(tokens), np.asarray(lengths).astype(np.int64)
        return DraftModelState(prefill(lm, tokens, lengths), lengths - 1)

    return init


def _feed_pending(lm: CausalLM, state: DraftModelState, tokens, lengths, act):
    """Feed every active row the tokens of its context the draft has not read (right-aligned,
    chain mode); return the logits (the last column is the next-token law) and the state."""
    pending = np.where(act, lengths - state.read, 0)
    W = int(max(pending.max(initial=0), 1))
    cols = lengths[:, None] - W + np.arange(W)[None, :]
    valid = (np.arange(W)[None, :] >= W - pending[:, None]) & act[:, None]
    toks = np.where(valid, np.take_along_axis(tokens, np.maximum(cols, 0), axis=1), 0)
    logits, cache = lm.logits(toks, state.cache, valid=valid)
    return logits, DraftModelState(cache, np.where(act, lengths, state.read))


@functools.partial(jax.jit, static_argnames=("log_law",))
def _draw(keys, i, logits, log_law):
    """Draft ``i`` of a chain: ``x ~ log_law(logits[:, -1])``; returns ``(x int32[B], log q)``."""
    lq = log_law(logits[:, -1])
    return jax.random.categorical(keys[i], lq, axis=-1).astype(jnp.int32), lq


@jax.jit
def _chain_out(xs, lqs):
    """The drafts ``int32[B, gamma]`` of a chain and their laws ``q[B, gamma + 1, V]`` (the
    per-position laws, then the placeholder row of the last node)."""
    q = jnp.exp(jnp.stack(lqs, axis=1))
    V = q.shape[-1]
    q = jnp.concatenate([q, jnp.full((q.shape[0], 1, V), 1.0 / V, q.dtype)], axis=1)
    return jnp.stack(xs, axis=1).astype(jnp.int32), q


@functools.partial(jax.jit, static_argnames=("log_law",))
def _last_log_law(logits, log_law):
    return log_law(logits[:, -1])


@functools.partial(jax.jit, static_argnames=("lo", "hi", "log_law"))
def _slice_log_law(logits, lo, hi, log_law):
    return log_law(logits[:, lo:hi])


def _host(*xs):
    return tuple(np.asarray(x) for x in jax.device_get(xs))


# -- the built-in proposers ------------------------------------------------------------------


def chain_proposer(draft_lm: CausalLM, gamma: int) -> Proposer:
    r"""Draft a chain of ``gamma`` tokens with a draft model, one i.i.d. draw per position.

    At every step row ``b`` first reads what it has not (1 token, or 2 after a step that
    accepted every draft: the last draft and the bonus token), then

    .. math:: x_i \sim \tilde q(\cdot \mid c, x_{<i}), \qquad i = 1, \dots, \gamma,

    with :math:`\tilde q` the warped draft law (``log_law``): ``gamma`` chain-mode draft
    calls, the first reading the pending tokens. After verification the draft cache is rolled
    back, per row, to the accepted drafts it has read (it never reads :math:`x_\gamma`).

    Args:
      draft_lm: the draft :class:`~spectheory.models.CausalLM` (same vocabulary as the target).
      gamma: drafts per step, ``>= 1``.

    Returns:
      :class:`Proposer` with scheme ``IID`` and branching ``(1,) * gamma``; its state is a
      :class:`DraftModelState`.

    >>> import jax, spectheory
    >>> from spectheory.models import TableLM, TableCausalLM
    >>> from spectheory.decode import chain_proposer
    >>> p = TableCausalLM(TableLM.context_free([0.5, 0.3, 0.2]))
    >>> q = TableCausalLM(TableLM.context_free([0.4, 0.4, 0.2]))
    >>> out = spectheory.generate(jax.random.key(0), p, chain_proposer(q, 3), [[0]], max_new_tokens=5)
    >>> out.draft_calls == 3 * out.target_calls
    True

    References:
      Leviathan, Kalman, Matias 2023 (arXiv 2211.17192); Chen et al. 2023 (arXiv 2302.01318).
    """
    lm = _check_lm(draft_lm, "draft_lm")
    gamma = _v.check_count(gamma, "gamma")

    def propose(key, state, tokens, lengths, active, log_law):
        tokens, lengths, act = _host(tokens, lengths, active)
        logits, state = _feed_pending(lm, state, tokens, lengths.astype(np.int64), act)
        cache = state.cache
        keys = jax.random.split(key, gamma)
        xs, lqs = [], []
        for i in range(gamma):
            x, lq = _draw(keys, i, logits, log_law)
            xs.append(x)
            lqs.append(lq)
            if i + 1 < gamma:
                logits, cache = lm.logits(np.asarray(x)[:, None], cache, valid=act[:, None])
        drafts, q = _chain_out(tuple(xs), tuple(lqs))
        return Proposal(chain_tree(drafts), q, gamma), DraftModelState(cache, state.read)

    def update(state, proposal, num_accepted, nodes, active):
        k, act = _host(num_accepted, active)
        read = np.where(act, state.read + np.minimum(k, gamma - 1), state.read)
        return DraftModelState(lm.rollback(state.cache, read), read)

    return Proposer(_lm_init(lm, "draft_lm"), propose, update, IID, (1,) * gamma)


def tree_proposer(draft_lm: CausalLM, scheme: Union[str, DraftScheme], branching: Sequence[int]) -> Proposer:
    r"""Grow a draft tree through a draft model, one tree-mode draft call per level.

    Every node :math:`s` at depth :math:`t` (the root is the context) gets ``branching[t]``
    children drawn by ``scheme.children`` from the warped draft law
    :math:`\tilde q(\cdot \mid c, \mathrm{path}(s))` (i.i.d., without replacement, greedy, ...):

    .. math:: (c_1, \dots, c_{b_t}) \sim Q_{\text{scheme}}\big(\cdot \mid
        \tilde q(\cdot \mid c, \mathrm{path}(s))\big).

    The first draft call reads the pending context tokens (chain mode; its last column is the
    root's law), the next ``D - 1`` score one level each in tree mode
    (:func:`spectheory.trees.grow_tree`). Tree nodes stay tentative in the draft cache; at the
    next step the draft reads the accepted path and the emitted token.

    Args:
      draft_lm: the draft :class:`~spectheory.models.CausalLM`.
      scheme: a :class:`~spectheory.DraftScheme` with a ``children`` sampler, or its
        registered name.
      branching: per-level fan-out ``(b_1, ..., b_D)``.

    Returns:
      :class:`Proposer` (``D`` draft calls per step).

    >>> import jax, spectheory
    >>> from spectheory.models import TableLM, TableCausalLM
    >>> from spectheory.decode import tree_proposer
    >>> p = TableCausalLM(TableLM.context_free([0.5, 0.3, 0.2]))
    >>> q = TableCausalLM(TableLM.context_free([0.4, 0.4, 0.2]))
    >>> prop = tree_proposer(q, "iid", (2, 1))
    >>> out = spectheory.generate(jax.random.key(0), p, prop, [[0]], verifier="specinfer", max_new_tokens=5)
    >>> out.draft_calls == 2 * out.target_calls
    True

    References:
      Miao et al., SpecInfer, ASPLOS 2024 (arXiv 2305.09781); Sun et al., SpecTr (arXiv
      2310.15141); Jeon et al., RSD (arXiv 2402.14160); Hu et al. 2025 (arXiv 2502.18779).
    """
    lm = _check_lm(draft_lm, "draft_lm")
    try:
        scheme = _drafts.scheme(scheme)
    except (TypeError, ValueError) as e:
        raise ValueError(f"scheme: {e}") from None
    if scheme.children is None:
        raise ValueError(f"scheme: draft scheme {scheme.name!r} has no tree children sampler "
                         "(DraftScheme.children), so a draft tree cannot carry it")
    branching = _v.check_branching(branching)
    D = len(branching)

    def propose(key, state, tokens, lengths, active, log_law):
        tokens, lengths, act = _host(tokens, lengths, active)
        logits, state = _feed_pending(lm, state, tokens, lengths.astype(np.int64), act)
        box = [state.cache]

        def expand(t, token, parent, valid, lo, hi):
            token, parent, valid = _host(token, parent, valid)
            out, box[0] = lm.logits(token[:, :hi], box[0], valid=valid[:, :hi], parents=parent[:, :hi])
            return _slice_log_law(out, lo, hi, log_law)

        tree, q = _trees.grow_tree(key, scheme, branching, _last_log_law(logits, log_law), expand, active=act)
        return Proposal(tree, q, D), DraftModelState(box[0], state.read)

    def update(state, proposal, num_accepted, nodes, active):
        return state  # the tree nodes were tentative; the next step reads the accepted path

    return Proposer(_lm_init(lm, "draft_lm"), propose, update, scheme, branching)


@functools.partial(jax.jit, static_argnames=("gamma", "fn", "V"))
def _lookup(tokens, lengths, gamma, fn, V):
    res = jax.vmap(lambda c, n: fn(c, n, num_drafts=gamma))(tokens, lengths)
    drafts = (res.tokens if hasattr(res, "tokens") else res)
    if drafts.shape != (tokens.shape[0], gamma):
        raise ValueError(f"fn: a lookup drafter must return int[num_drafts] = int[{gamma}] (or a PromptLookupDraft) "
                         f"per row, got shape {tuple(drafts.shape[1:])}")
    drafts = drafts.astype(jnp.int32)
    q = jax.nn.one_hot(drafts, V, dtype=jnp.float32)
    q = jnp.concatenate([q, jnp.full((q.shape[0], 1, V), 1.0 / V, q.dtype)], axis=1)
    return drafts, q


def lookup_proposer(fn: Callable, gamma: int) -> Proposer:
    r"""Deterministic drafts from the context (prompt lookup, n-grams, any traceable rule).

    ``fn(context int[S], length, *, num_drafts) -> int[num_drafts] | PromptLookupDraft`` (e.g.
    :func:`spectheory.models.prompt_lookup`) proposes ``gamma`` tokens after
    ``context[:length]``; it is ``vmap``-ed over the batch under ``jit``. The drafts are a
    function of the context, so their law is a point mass, whatever the temperature:

    .. math:: q_i = \delta_{x_i} \quad (:func:`~spectheory.models.point_mass`),

    and token verification accepts :math:`x_i` with probability :math:`\tilde p_i(x_i)`, else
    samples :math:`\tilde p_i(\cdot \mid \ne x_i)`: a mixture equal to :math:`\tilde p_i`, so
    generation stays lossless. No draft calls. Filler entries (past a lookup's
    ``num_drafts``) are verified like the others: lossless, only wasted.

    Args:
      fn: the drafter (hashable; a static argument of ``jax.jit``).
      gamma: drafts per step, ``>= 1``.

    Returns:
      :class:`Proposer` with scheme ``IID`` (one draw from a point mass) and branching
      ``(1,) * gamma``.

    >>> import jax, spectheory
    >>> from spectheory.models import TableLM, TableCausalLM, prompt_lookup
    >>> from spectheory.decode import lookup_proposer
    >>> p = TableCausalLM(TableLM.context_free([0.5, 0.3, 0.2]))
    >>> out = spectheory.generate(jax.random.key(0), p, lookup_proposer(prompt_lookup, 2), [[0, 1, 0]],
    ...                           max_new_tokens=4)
    >>> out.draft_calls
    0

    References:
      Saxena, Prompt Lookup Decoding (2023); Leviathan et al. 2023 (arXiv 2211.17192).
    """
    if isinstance(fn, CausalLM) or not callable(fn):
        raise ValueError(f"fn: expected a drafter fn(context, length, *, num_drafts), got {type(fn).__name__}")
    try:
        hash(fn)
    except TypeError:
        raise ValueError(f"fn: the drafter must be hashable (a static argument of jax.jit), got an unhashable "
                         f"{type(fn).__name__}") from None
    gamma = _v.check_count(gamma, "gamma")

    def init(tokens, lengths, vocab_size):
        return int(vocab_size)

    def propose(key, state, tokens, lengths, active, log_law):
        drafts, q = _lookup(tokens, lengths, gamma, fn, state)
        return Proposal(chain_tree(drafts), q, 0), state

    def update(state, proposal, num_accepted, nodes, active):
        return state

    return Proposer(init, propose, update, IID, (1,) * gamma)
