r"""Decoding as a kernel: the state, one step, and its verifiers (private).

Like a blackjax sampler, speculative decoding is ``state = init(...)`` and a kernel
``step(key, state) -> (state, info)`` built once by :func:`build_step` from the parts that do
not change between steps: the target model, a :class:`~spectheory.decode.Proposer` (where the
drafts come from), a verifier (how they are accepted) and the warp of the laws.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from spectheory import _registry
from spectheory import _validation as _v
from spectheory import trees as _trees
from spectheory._registry import ChainVerifier, DraftScheme, Rule, rule as _lookup_rule, rules as _registered
from spectheory.decode import _laws
from spectheory.decode._laws import LogLaw
from spectheory.decode._proposers import Proposer, _check_lm, prefill
from spectheory.models import CausalLM

__all__ = ["DecodeState", "StepInfo", "init", "build_step", "supported_verifiers"]


class DecodeState(NamedTuple):
    r"""The state of speculative decoding for a batch of ``B`` rows (blackjax style: the
    kernel returns a new one; the model caches inside are used linearly).

    Row ``b``'s context is ``tokens[b, :lengths[b]]``: its prompt and every token emitted so
    far. Its generated output is the first ``num_generated[b]`` tokens after the prompt (at
    most ``max_new_tokens``, cut after the first ``eos_token_id``), which can be fewer than
    the tokens emitted (a step may overshoot the budget; the overshoot stays in the context).

    Attributes:
      tokens: the prompts and the emitted tokens, 0 past ``lengths``; ``L`` is the longest
        prompt plus ``max_new_tokens`` plus the proposal depth plus one.
        # shape=(B, L), dtype=int32
      lengths: number of tokens of every row's context.  # shape=(B,), dtype=int32
      prompt_lengths: length of every prompt.  # shape=(B,), dtype=int32
      num_generated: number of generated tokens that count as output.  # shape=(B,), dtype=int32
      active: whether a row still decodes (budget left, no EOS yet).  # shape=(B,), dtype=bool
      max_new_tokens: the output budget of every row.  # shape=(), dtype=int32
      eos_token_id: the token that ends a row (kept in its output), -1 for none.
        # shape=(), dtype=int32
      target_cache: the target model's cache, holding every row's context but its last
        token (opaque).
      proposer_state: the proposer's state (opaque; e.g. a
        :class:`~spectheory.decode.DraftModelState`).

    The output of row ``b`` is

    .. math:: y_b = \mathrm{tokens}[b,\ \ell_b : \ell_b + n_b], \qquad
        \ell_b = \mathrm{prompt\_lengths}[b],\ n_b = \mathrm{num\_generated}[b].

    >>> from spectheory.models import TableLM, TableCausalLM
    >>> from spectheory.decode import init, lookup_proposer
    >>> from spectheory.models import prompt_lookup
    >>> lm = TableCausalLM(TableLM.context_free([0.5, 0.3, 0.2]))
    >>> s = init(lm, lookup_proposer(prompt_lookup, 2), [[0, 1]], max_new_tokens=4, eos_token_id=2)
    >>> s.tokens.tolist(), s.num_generated.tolist(), int(s.eos_token_id)
    ([[0, 1, 0, 0, 0, 0, 0, 0, 0]], [0], 2)

    References:
      Cabezas et al., BlackJAX: Composable Bayesian inference in JAX (arXiv 2402.10797) (a
      kernel's state as a NamedTuple).
    """

    tokens: jax.Array
    lengths: jax.Array
    prompt_lengths: jax.Array
    num_generated: jax.Array
    active: jax.Array
    max_new_tokens: jax.Array
    eos_token_id: jax.Array
    target_cache: Any
    proposer_state: Any


class StepInfo(NamedTuple):
    """What one step did (blackjax's ``info``).

    Attributes:
      num_accepted: accepted drafts of every row (``0..D``), -1 for rows that had already
        finished.  # shape=(B,), dtype=int32
      tokens: the tokens every row emitted (its accepted drafts, then one corrected or bonus
        token), -1 padded; all -1 for finished rows.  # shape=(B, D+1), dtype=int32
      target_calls: target ``logits`` calls of the step (1).  # Python int
      draft_calls: draft-model ``logits`` calls of the step (``gamma`` for a chain, the depth
        for a tree, 0 for prompt lookup).  # Python int

    A row that accepted :math:`k` drafts emitted :math:`k + 1` tokens: ``tokens[b, :k + 1]``.

    >>> import jax
    >>> from spectheory.models import TableLM, TableCausalLM
    >>> from spectheory.decode import build_step, chain_proposer, init
    >>> lm = TableCausalLM(TableLM.context_free([0.5, 0.3, 0.2]))
    >>> prop = chain_proposer(lm, 2)
    >>> _, info = build_step(lm, prop, "single")(jax.random.key(0), init(lm, prop, [[0]], max_new_tokens=5))
    >>> info.num_accepted.tolist(), info.tokens.shape, info.target_calls, info.draft_calls
    ([2], (1, 3), 1, 2)

    References:
      Cabezas et al., BlackJAX (arXiv 2402.10797) (the ``info`` of a kernel step).
    """

    num_accepted: jax.Array
    tokens: jax.Array
    target_calls: int
    draft_calls: int


# -- validation ------------------------------------------------------------------------------


def _check_target(target) -> CausalLM:
    return _check_lm(target, "target")


def _check_proposer(proposer, name: str = "proposer") -> Proposer:
    if not isinstance(proposer, Proposer):
        raise ValueError(f"{name}: expected a spectheory.decode.Proposer, got {type(proposer).__name__}")
    for attr in ("init", "propose", "update"):
        if not callable(getattr(proposer, attr)):
            raise ValueError(f"{name}: {attr} must be callable, got {type(getattr(proposer, attr)).__name__}")
    if not isinstance(proposer.scheme, DraftScheme):
        raise ValueError(f"{name}: scheme must be a spectheory.DraftScheme, got {type(proposer.scheme).__name__}")
    _v.check_branching(proposer.branching, f"{name}: branching")
    return proposer


def _as_prompts(prompts, V: int) -> list[np.ndarray]:
    if isinstance(prompts, (str, bytes)):
        raise ValueError("prompts: expected a list of int sequences or int[B, L], got a string (encode it first)")
    if isinstance(prompts, (list, tuple)):
        rows = []
        for i, r in enumerate(prompts):
            if isinstance(r, (str, bytes)):
                raise ValueError(f"prompts: row {i} is a string; expected a non-empty 1-D int sequence")
            try:
                rows.append(np.asarray(r))
            except ValueError:
                raise ValueError(f"prompts: row {i} must be a non-empty 1-D int sequence") from None
    else:
        try:
            arr = np.asarray(prompts)
        except ValueError:
            raise ValueError("prompts: expected a list of int sequences or int[B, L]") from None
        if arr.ndim != 2:
            raise ValueError(f"prompts: expected a list of int sequences or int[B, L], got shape {arr.shape}")
        rows = list(arr)
    if not rows:
        raise ValueError("prompts: need at least one prompt")
    out = []
    for i, r in enumerate(rows):
        if r.ndim != 1 or r.size == 0:
            raise ValueError(f"prompts: row {i} must be a non-empty 1-D int sequence")
        if not np.issubdtype(r.dtype, np.integer):
            raise ValueError(f"prompts: row {i} must hold ints, got {r.dtype}")
        if np.any(r < 0) or np.any(r >= V):
            raise ValueError(f"prompts: row {i} has token ids outside [0, {V})")
        out.append(r.astype(np.int32))
    return out


def supported_verifiers() -> list:
    """The verifiers decoding accepts now: the chain verifiers
    :data:`spectheory.verify.TOKEN` and :data:`spectheory.verify.BLOCK` (values), then the
    names of the registered rules usable at the nodes of a draft tree (a draft scheme with a
    ``children`` sampler, a traceable verifier).

    Returns:
      A new ``list``: the :class:`~spectheory.ChainVerifier` values ``TOKEN`` and ``BLOCK``,
      then the registered rule names (``str``, registration order) whose draft scheme has a
      ``children`` sampler and whose verifier is not host-only. Any of these may be passed as
      the ``verifier`` of decoding.

    >>> from spectheory.decode import supported_verifiers
    >>> [v if isinstance(v, str) else v.name for v in supported_verifiers()][:3]
    ['token', 'block', 'single']

    References:
      Leviathan et al. 2023 (arXiv 2211.17192); Sun et al., ICLR 2025 (arXiv 2403.10444);
      Miao et al., SpecInfer (arXiv 2305.09781).
    """
    from spectheory.verify import BLOCK, TOKEN

    out: list = [TOKEN, BLOCK]
    for name in _registered():
        r = _lookup_rule(name)
        if r.drafts.children is not None and not r.verifier.host_only:
            out.append(name)
    return out


def _supported_text() -> str:
    names = [v if isinstance(v, str) else f"spectheory.verify.{v.name.upper()}" for v in supported_verifiers()]
    return ", ".join(names)


def _check_chain_verifier(v: ChainVerifier) -> ChainVerifier:
    if not isinstance(v.name, str):
        raise ValueError(f"verifier: a ChainVerifier's name must be a str, got {type(v.name).__name__}")
    for attr in ("verify_with_uniforms", "num_uniforms"):
        if not callable(getattr(v, attr)):
            raise ValueError(f"verifier: ChainVerifier {v.name!r}: {attr} must be callable, got "
                             f"{type(getattr(v, attr)).__name__}")
    return v


def _check_rule(r: Rule) -> Rule:
    """A rule decoding may run: the registered object of its name, or a rule with a sound
    structure that passes the registration audit (:func:`spectheory._registry.audit_rule`,
    cached per rule); ``ValueError`` naming ``verifier``. A host-only rule is not audited
    here: :func:`check_pairing` refuses it."""
    try:
        _registry.check_rule(r)
        if not r.verifier.host_only:
            _registry.trusted(r)
    except (TypeError, ValueError) as e:
        msg = str(e)
        raise ValueError(msg if msg.startswith("verifier") else f"verifier: rule {r.name!r}: {msg}") from None
    return r


def resolve_verifier(verifier) -> Union[ChainVerifier, Rule]:
    """A :class:`~spectheory.ChainVerifier`, a :class:`~spectheory.Rule`, or a registered rule
    name (a string always names a rule) as the value; ``ValueError`` naming ``verifier``.

    A :class:`~spectheory.Rule` that is not the registered object of its name must pass the
    same structure check and exact audit as :func:`spectheory.register` (once per rule: the
    verdict is cached), so no unregistered wrong rule (e.g.
    :data:`spectheory.testing.naive_independent_rule`) decodes."""
    if isinstance(verifier, ChainVerifier):
        return _check_chain_verifier(verifier)
    if isinstance(verifier, Rule):
        return _check_rule(verifier)
    if isinstance(verifier, str):
        try:
            return _lookup_rule(verifier)
        except ValueError:
            raise ValueError(
                f"verifier: no registered rule is named {verifier!r} (a string always names a rule; the chain "
                f"verifiers are values, spectheory.verify.TOKEN and spectheory.verify.BLOCK); supported: "
                f"{_supported_text()}") from None
    raise ValueError(f"verifier: expected a ChainVerifier, a Rule or a registered rule name, got "
                     f"{type(verifier).__name__}")


def check_pairing(verifier: Union[ChainVerifier, Rule], proposer: Proposer, V: int) -> None:
    """Refuse a verifier that cannot verify the proposer's drafts losslessly."""
    branching = tuple(proposer.branching)
    if isinstance(verifier, ChainVerifier):
        if any(b > 1 for b in branching):
            raise ValueError(
                f"verifier: the chain verifier {verifier.name!r} verifies a chain of drafts, but the proposal is a "
                f"tree with branching {branching}; verify a tree with a Rule whose draft scheme is the tree's "
                f"({proposer.scheme.name!r})")
        return
    r = verifier
    if r.verifier.host_only:
        raise ValueError(f"verifier: rule {r.name!r} is host-only; decoding verifies inside jit and needs a "
                         f"traceable verifier (supported: {_supported_text()})")
    if r.drafts.name != proposer.scheme.name:
        raise ValueError(
            f"verifier: rule {r.name!r} assumes draft scheme {r.drafts.name!r}, but the proposer draws its drafts "
            f"by {proposer.scheme.name!r}; a node rule must assume the children's law or it is not lossless")
    for m in range(1, max(branching) + 1):
        # a node may get fewer children than its fan-out (distinct drafts on a small support),
        # and the traced tree verifier dispatches on every count up to the widest
        if not r.supports(m, V):
            raise ValueError(f"branching: rule {r.name!r} is not defined for {m} drafts over V={V} "
                             f"(proposal branching {branching})")


# -- init ------------------------------------------------------------------------------------


def init(target: CausalLM, proposer: Proposer, prompts: Union[Sequence[Sequence[int]], ArrayLike], *,
         max_new_tokens: int, eos_token_id: Optional[int] = None) -> DecodeState:
    r"""The decoding state before the first step: prompts written, target and proposer prefilled.

    Row ``b``'s prompt :math:`c_b` is copied into ``tokens``; the target reads
    :math:`c_b` but its last token (the first step scores that one with the drafts), and
    ``proposer.init`` prepares the proposer (a draft model reads the same). Every row starts
    active.

    Args:
      target: the target :class:`~spectheory.models.CausalLM` (``V`` logits per position).
      proposer: a :class:`~spectheory.decode.Proposer`.
      prompts: ``B`` prompts: a list of non-empty int sequences (ragged) or ``int[B, L]``, ids
        in ``[0, V)``.
      max_new_tokens: tokens to generate per row, ``>= 1``.
      eos_token_id: optional id in ``[0, V)``; a row stops after emitting it (the EOS is kept
        in its output).

    Returns:
      :class:`DecodeState`.

    >>> from spectheory.models import TableLM, TableCausalLM
    >>> from spectheory.decode import chain_proposer, init
    >>> lm = TableCausalLM(TableLM.context_free([0.5, 0.3, 0.2]))
    >>> s = init(lm, chain_proposer(lm, 2), [[0], [1, 2]], max_new_tokens=3)
    >>> s.tokens.shape, s.lengths.tolist(), s.active.tolist()
    ((2, 8), [1, 2], [True, True])

    References:
      Leviathan et al. 2023 (arXiv 2211.17192); Cabezas et al., BlackJAX (arXiv 2402.10797)
      for the ``init`` / ``step`` design.
    """
    _check_target(target)
    _check_proposer(proposer)
    V = int(target.vocab_size)
    max_new_tokens = _v.check_count(max_new_tokens, "max_new_tokens")
    if eos_token_id is not None and (isinstance(eos_token_id, bool) or not isinstance(eos_token_id, (int, np.integer))
                                     or not 0 <= int(eos_token_id) < V):
        raise ValueError(f"eos_token_id: must be None or an int in [0, {V}), got {eos_token_id!r}")
    rows = _as_prompts(prompts, V)
    plen = np.array([len(r) for r in rows], np.int32)
    L = int(plen.max()) + int(max_new_tokens) + len(proposer.branching) + 1
    tokens = np.zeros((len(rows), L), np.int32)
    for b, r in enumerate(rows):
        tokens[b, :len(r)] = r
    t_cache = prefill(target, tokens, plen)
    tokens_j, plen_j = jnp.asarray(tokens), jnp.asarray(plen)
    p_state = proposer.init(tokens_j, plen_j, V)
    return DecodeState(tokens_j, plen_j, plen_j, jnp.zeros(len(rows), jnp.int32), jnp.ones(len(rows), bool),
                       jnp.asarray(max_new_tokens, jnp.int32),
                       jnp.asarray(-1 if eos_token_id is None else eos_token_id, jnp.int32), t_cache, p_state)


# -- the jitted pieces of a step -------------------------------------------------------------


# ``probs`` is the law function the step looked up at call time (``_laws.verify_probs``): a
# static argument, so the target is scored inside the same compiled call and a replaced law
# function (a test of the mismatch bug) is traced afresh rather than served from the cache.


@functools.partial(jax.jit, static_argnames=("verifier", "probs", "warp"))
def _verify_chain(key, logits, q, drafts, verifier: ChainVerifier, probs, warp):
    p = probs(logits, *warp)
    B, g = drafts.shape
    dtype = jnp.result_type(p.dtype, q.dtype)
    u = jax.random.uniform(key, (B, int(verifier.num_uniforms(g))), dtype)
    res = jax.vmap(verifier.verify_with_uniforms)(u, p.astype(dtype), q[:, :g].astype(dtype), drafts)
    k = res.num_accepted.astype(jnp.int32)
    nodes = jnp.where(jnp.arange(g)[None, :] < k[:, None], jnp.arange(g, dtype=jnp.int32)[None, :], -1)
    return res.tokens.astype(jnp.int32), k, nodes


@functools.partial(jax.jit, static_argnames=("rule", "probs", "warp"))
def _verify_tree(key, tree, logits, q, rule: Rule, probs, warp):
    p = probs(logits, *warp)
    B, V = p.shape[0], p.shape[-1]
    dtype = jnp.result_type(p.dtype, q.dtype)
    one = jax.tree_util.tree_map(lambda a: a[0], tree)
    u = jax.random.uniform(key, (B, int(_trees.tree_num_uniforms(one, rule, V))), dtype)
    res = jax.vmap(lambda uu, tt, pp, qq: _trees.tree_verify_with_uniforms(uu, tt, pp, qq, rule))(
        u, tree, p.astype(dtype), q.astype(dtype))
    return res.tokens.astype(jnp.int32), res.num_accepted.astype(jnp.int32), res.nodes.astype(jnp.int32)


@jax.jit
def _advance(tokens, lengths, num_generated, active, max_new, eos, emitted, k):
    """Append every active row's ``k + 1`` emitted tokens; count the output (budget, EOS)."""
    B, L = tokens.shape
    j = jnp.arange(emitted.shape[1])[None, :]
    count = jnp.where(active, k + 1, 0)
    write = j < count[:, None]
    cols = jnp.where(write, lengths[:, None] + j, L)  # column L: dropped
    tokens = tokens.at[jnp.arange(B)[:, None], cols].set(emitted, mode="drop")
    take = jnp.minimum(count, max_new - num_generated)
    is_eos = (emitted == eos) & (j < take[:, None])
    hit = jnp.any(is_eos, axis=1)
    take = jnp.where(hit, jnp.argmax(is_eos, axis=1) + 1, take)
    num_generated = num_generated + take
    new_active = active & ~hit & (num_generated < max_new)
    return (tokens, lengths + count, num_generated, new_active, jnp.where(active, k, -1),
            jnp.where(write, emitted, -1))


def _host(*xs):
    return tuple(np.asarray(x) for x in jax.device_get(xs))


def _keep(nodes, act, N: int) -> np.ndarray:
    """``keep bool[B, N+1]`` for ``commit``: the last context token (slot 0) and the accepted
    path (node ``i`` in slot ``i + 1``) of every active row."""
    hit = (nodes[:, :, None] + 1 == np.arange(N + 1)[None, None, :]) & (nodes >= 0)[:, :, None]
    keep = hit.any(axis=1)
    keep[:, 0] = True
    return keep & act[:, None]


# -- the kernel ------------------------------------------------------------------------------


def build_step(target: CausalLM, proposer: Proposer, verifier: Union[ChainVerifier, Rule, str], *,
               temperature: float = 1.0, top_k: Optional[int] = None, top_p: Optional[float] = None):
    r"""Build the speculative-decoding kernel ``step(key, state) -> (state, info)``.

    One step of every active row :math:`b` with context :math:`c`:

    1. *propose*: ``proposer.propose`` drafts a tree (a chain is a one-branch tree) with the
       warped draft law :math:`\tilde q = \mathrm{softmax}(\mathrm{warp}(\ell^q))` and reports
       it as ``q``;
    2. *score* the last context token and every node in one target call (chain mode for a
       chain, tree mode otherwise): :math:`\tilde p(\cdot \mid c, \mathrm{path}(s))` at the
       root and at every node :math:`s`;
    3. *verify*: a :class:`~spectheory.ChainVerifier` on the chain (token verification accepts
       :math:`x_i` with probability :math:`\min(1, \tilde p_i(x_i)/\tilde q_i(x_i))` and on the
       first rejection samples :math:`\mathrm{norm}((\tilde p_i - \tilde q_i)_+)`; block
       verification decides the block jointly), or a :class:`~spectheory.Rule` at every node
       of the tree (:func:`spectheory.trees.tree_verify_with_uniforms`): :math:`k` accepted
       drafts and one corrected or bonus token;
    4. *roll back* the target per row to the accepted prefix (``rollback`` after a chain,
       ``commit`` of the accepted path after a tree), tell the proposer (``update``), append
       the :math:`k + 1` tokens, and stop rows that reached their budget or emitted EOS.

    The output has exactly the law of sampling the warped target token by token:

    .. math:: \Pr(y_{1:m} \mid c) = \prod_{j=1}^{m} \tilde p(y_j \mid c, y_{<j}).

    **The warp must be the same on both sides.** Proposers draw from the
    :class:`~spectheory.decode.LogLaw` the step hands them and the target is scored with the
    same warp (``draft_log_probs`` / ``verify_probs`` in ``spectheory/decode/_laws.py``, the
    one pair of functions for both); verifying warped drafts against unwarped laws (or the
    reverse) silently changes the output law. ``temperature = 0`` is greedy: point masses on
    both sides, so the output is greedy decoding of the target.

    **Pairing.** A chain verifier needs a chain (every ``branching`` 1); a rule must assume the
    proposer's draft scheme (``rule.drafts.name == proposer.scheme.name``), be defined for
    every child count up to the widest level, and be traceable. Otherwise ``ValueError``.

    Args:
      target: the target :class:`~spectheory.models.CausalLM`.
      proposer: a :class:`~spectheory.decode.Proposer`.
      verifier: a :class:`~spectheory.ChainVerifier` (:data:`spectheory.verify.TOKEN`,
        :data:`spectheory.verify.BLOCK`), a :class:`~spectheory.Rule` (registered, or one that
        passes the registration audit of :func:`spectheory.register`, run once per rule), or a
        registered rule name; see :func:`supported_verifiers`.
      temperature: static float ``>= 0`` (0 is greedy).
      top_k: optional static positive int. top_p: optional static float in ``(0, 1]``.

    Returns:
      ``step(key, state: DecodeState) -> (DecodeState, StepInfo)`` (``ValueError`` naming
      ``key`` or ``state`` when they are not a ``jax.random`` key and a :class:`DecodeState`).
      Rows already finished are left as they are. The step calls host-side models, so it is
      not itself ``jax.jit``-able; its array work runs in jitted pieces (one compilation per
      shape).

    >>> import jax
    >>> from spectheory.models import TableLM, TableCausalLM
    >>> from spectheory.verify import TOKEN
    >>> from spectheory.decode import build_step, chain_proposer, init
    >>> p = TableCausalLM(TableLM.context_free([0.5, 0.3, 0.2]))
    >>> prop = chain_proposer(p, 3)  # draft == target: every draft is accepted
    >>> step = build_step(p, prop, TOKEN)
    >>> state, info = step(jax.random.key(0), init(p, prop, [[0]], max_new_tokens=8))
    >>> info.num_accepted.tolist(), state.num_generated.tolist(), info.draft_calls
    ([3], [4], 3)

    References:
      Leviathan, Kalman, Matias, ICML 2023 (arXiv 2211.17192); Chen et al. 2023 (arXiv
      2302.01318); Sun et al., Block Verification, ICLR 2025 (arXiv 2403.10444); Miao et al.,
      SpecInfer (arXiv 2305.09781); Cabezas et al., BlackJAX (arXiv 2402.10797).
    """
    _check_target(target)
    _check_proposer(proposer)
    law = LogLaw.checked(temperature, top_k, top_p)
    V = int(target.vocab_size)
    verifier = resolve_verifier(verifier)
    check_pairing(verifier, proposer, V)
    D = len(proposer.branching)
    chain = all(b == 1 for b in proposer.branching)
    by_rule = isinstance(verifier, Rule)

    def step(key, state: DecodeState):
        key = _v.check_key(key)
        if not isinstance(state, DecodeState):
            raise ValueError(f"state: expected a DecodeState (from spectheory.decode.init), got {type(state).__name__}")
        k_prop, k_verify = jax.random.split(key)
        proposal, p_state = proposer.propose(k_prop, state.proposer_state, state.tokens, state.lengths,
                                             state.active, law)
        tree, q = proposal.tree, proposal.q
        tokens, lengths, act, tok, par, ok = _host(state.tokens, state.lengths, state.active, tree.token,
                                                   tree.parent, tree.valid)
        last = tokens[np.arange(len(act)), np.maximum(lengths - 1, 0)]
        ok = ok & act[:, None]
        if np.any(ok & ((tok < 0) | (tok >= V))) or (chain and not np.all(ok == act[:, None])):
            raise ValueError(f"proposer: a proposal must hold token ids in [0, {V}) and, for a chain, every node")
        t_tok = np.concatenate([last[:, None], np.where(ok, tok, 0)], axis=1)
        t_valid = np.concatenate([act[:, None], ok], axis=1)
        if chain:
            logits, t_cache = target.logits(t_tok, state.target_cache, valid=t_valid)
        else:
            t_par = np.concatenate([np.full((len(act), 1), -1), np.where(ok, par + 1, -1)], axis=1)
            logits, t_cache = target.logits(t_tok, state.target_cache, valid=t_valid, parents=t_par)
        if by_rule:
            emitted, k, nodes = _verify_tree(k_verify, tree, logits, q, verifier, _laws.verify_probs, law)
        else:
            emitted, k, nodes = _verify_chain(k_verify, logits, q, tree.token, verifier, _laws.verify_probs, law)
        k_h, nodes_h = _host(k, nodes)
        if chain:
            t_cache = target.rollback(t_cache, lengths - 1 + act * (k_h + 1))
        else:
            t_cache = target.commit(t_cache, _keep(nodes_h, act, tok.shape[1]))
        p_state = proposer.update(p_state, proposal, k, nodes, state.active)
        tokens, new_len, num_gen, active, info_k, info_tok = _advance(
            state.tokens, state.lengths, state.num_generated, state.active, state.max_new_tokens,
            state.eos_token_id, emitted, k)
        new = state._replace(tokens=tokens, lengths=new_len, num_generated=num_gen, active=active,
                             target_cache=t_cache, proposer_state=p_state)
        return new, StepInfo(info_k, info_tok, 1, int(proposal.draft_calls))

    step.__doc__ = (f"One speculative-decoding step (target {type(target).__name__}, verifier "
                    f"{getattr(verifier, 'name', verifier)!r}, branching {tuple(proposer.branching)}, depth {D}): "
                    "step(key, state) -> (DecodeState, StepInfo).")
    return step
