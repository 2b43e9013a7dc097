"""Speculative generation with real causal language models (private).

:func:`generate` drives a target and a draft :class:`~spectheory.models.CausalLM` (or a
prompt-lookup drafter) through draft / score / verify / roll back steps, for a ragged batch,
with any chain rule (token or block verification) or a registered one-position rule at every
node of a draft tree.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from spectheory._registry import Rule, rule as _lookup_rule, rules as _registered
from spectheory.models._causal_lm import CausalLM
from spectheory.verify._block import block_with_uniforms
from spectheory.verify._chain import chain_with_uniforms
from spectheory.verify._warp import check_warp, warp_logits

__all__ = ["GenerateOutput", "generate", "supported_rules"]

#: Chain rules :func:`generate` understands besides tree-usable registered rules.
CHAIN_RULES = ("token", "block")


class GenerateOutput(NamedTuple):
    """What :func:`generate` returns.

    Attributes:
      tokens: the generated tokens of every row (the prompt excluded), at most
        ``max_new_tokens``, cut after the first ``eos_token_id`` (kept), padded with -1.
        # shape=(B, max_new_tokens), dtype=int32
      lengths: number of generated tokens of every row.  # shape=(B,), dtype=int32
      accepted: accepted drafts of every row at every step (``0..gamma``), -1 where the row had
        already finished.  # shape=(steps, B), dtype=int32
      target_calls: number of target ``logits`` calls in the decoding loop (one per step; the
        prefill call on the prompts is not counted).  # Python int
      draft_calls: number of draft ``logits`` calls in the decoding loop (``gamma`` per step
        for a chain, the tree depth per step for a tree, 0 for prompt lookup; prefill not
        counted).  # Python int
    """

    tokens: jax.Array
    lengths: jax.Array
    accepted: jax.Array
    target_calls: int
    draft_calls: int


# -- the laws: ONE place where logits become sampling laws, used for drafting and verifying ------


def draft_log_probs(logits, temperature, top_k, top_p) -> jax.Array:
    """Log of the law the drafts are sampled from: the *warped* draft law."""
    return jax.nn.log_softmax(warp_logits(logits, temperature, top_k, top_p), axis=-1)


def verify_probs(logits, temperature, top_k, top_p) -> jax.Array:
    """The law handed to the verifier: the same warp as :func:`draft_log_probs` (for ``q``) and
    as the target's sampling law (for ``p``). Keeping drafting and verifying on this one pair
    of functions is what makes generation lossless for the warped target."""
    return jax.nn.softmax(warp_logits(logits, temperature, top_k, top_p), axis=-1)


# -- validation ------------------------------------------------------------------------------


def _tree_scheme(r: Rule) -> Optional[str]:
    from spectheory.trees._verify import SCHEME_NAMES

    for tag, names in SCHEME_NAMES.items():
        if r.drafts.name in names and bool(r.drafts.replacement) == (tag == "iid"):
            return tag
    return None


def supported_rules() -> list[str]:
    """Rule names :func:`generate` accepts now: ``"token"``, ``"block"`` and every registered
    rule whose draft scheme a draft tree can carry (i.i.d., without replacement, greedy) and
    whose verifier is traceable."""
    out = list(CHAIN_RULES)
    for name in _registered():
        r = _lookup_rule(name)
        if _tree_scheme(r) is not None and not r.verifier.host_only:
            out.append(name)
    return out


def _check_rule(rule) -> Union[str, Rule]:
    if isinstance(rule, str) and rule in CHAIN_RULES:
        return rule
    r = rule
    if isinstance(rule, str):
        try:
            r = _lookup_rule(rule)
        except ValueError:
            r = None
    if not isinstance(r, Rule) or _tree_scheme(r) is None or r.verifier.host_only:
        raise ValueError(
            f"rule: generate supports {supported_rules()} (chain rules 'token', 'block'; registered "
            f"rules whose draft scheme a draft tree carries and whose verifier is traceable), got {rule!r}")
    return r


def _check_branching(r: Rule, gamma: int, branching, V: int) -> tuple[int, ...]:
    if branching is None:
        b = r.fixed_n if r.fixed_n is not None else max(2, r.drafts.min_n)
        rest = 1 if r.supports(1, V) else b
        branching = (b,) + (rest,) * (gamma - 1)
    if isinstance(branching, (int, np.integer)) and not isinstance(branching, bool):
        branching = (int(branching),) * gamma
    branching = tuple(int(x) for x in branching)
    if not branching or any(x < 1 for x in branching):
        raise ValueError(f"branching: expected a non-empty sequence of positive ints, got {branching!r}")
    for m in range(1, max(branching) + 1):
        # a node may get fewer children than its fan-out (without replacement on a small
        # support), and the traced tree verifier dispatches on every count up to the widest
        if not r.supports(m, V):
            raise ValueError(f"branching: rule {r.name!r} is not defined for {m} drafts over V={V} "
                             f"(branching {branching})")
    return branching


def _as_prompts(prompt_ids, V: int) -> list[np.ndarray]:
    if isinstance(prompt_ids, (list, tuple)):
        rows = [np.asarray(r) for r in prompt_ids]
    else:
        arr = np.asarray(prompt_ids)
        if arr.ndim != 2:
            raise ValueError(f"prompt_ids: expected a list of int sequences or int[B, L], got shape {arr.shape}")
        rows = list(arr)
    if not rows:
        raise ValueError("prompt_ids: need at least one prompt")
    out = []
    for i, r in enumerate(rows):
        if r.ndim != 1 or r.size == 0:
            raise ValueError(f"prompt_ids: row {i} must be a non-empty 1-D int sequence")
        if not np.issubdtype(r.dtype, np.integer):
            raise ValueError(f"prompt_ids: row {i} must hold ints, got {r.dtype}")
        if np.any(r < 0) or np.any(r >= V):
            raise ValueError(f"prompt_ids: row {i} has token ids outside [0, {V})")
        out.append(r.astype(np.int32))
    return out


def _is_lookup(draft) -> bool:
    return not isinstance(draft, CausalLM) and callable(draft)


# -- the jitted per-step pieces --------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("which",))
def _verify_chains(u, p, q, drafts, which: str):
    fn = chain_with_uniforms if which == "token" else block_with_uniforms
    return jax.vmap(fn)(u, p, q, drafts)


@functools.partial(jax.jit, static_argnames=("num_drafts", "drafter"))
def _lookup_drafts(context, lengths, num_drafts: int, drafter: Callable):
    res = jax.vmap(lambda c, n: drafter(c, n, num_drafts=num_drafts))(context, lengths)
    return res.tokens if hasattr(res, "tokens") else res


# -- the driver ------------------------------------------------------------------------------


def generate(
    target: CausalLM,
    draft: Union[CausalLM, Callable],
    prompt_ids: Union[Sequence[Sequence[int]], ArrayLike],
    *,
    key: jax.Array,
    rule: Union[str, Rule] = "token",
    gamma: int = 4,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: Optional[int] = None,
    top_p: Optional[float] = None,
    eos_token_id: Optional[int] = None,
    branching: Optional[Sequence[int]] = None,
) -> GenerateOutput:
    r"""Speculative generation: draft with a small model, verify with the target, losslessly.

    Every step of every unfinished row (with :math:`c` its tokens so far):

    1. *draft* :math:`x_1, \dots, x_\gamma`, :math:`x_i \sim q_i = \tilde q(\cdot \mid c, x_{<i})`
       (``gamma`` draft calls of one token each); or a draft tree, level by level;
    2. *score* all of them with one target call: :math:`p_i = \tilde p(\cdot \mid c, x_{<i})`,
       :math:`i = 1..\gamma + 1`;
    3. *verify* with ``rule`` and emit the accepted drafts plus one corrected or bonus token;
    4. *roll back* both caches per row to the accepted prefix (ragged rows: each row keeps its
       own count; a row that accepted all ``gamma`` drafts feeds :math:`x_\gamma` to the draft
       model at the next step, together with the bonus token).

    Here :math:`\tilde p`, :math:`\tilde q` are the **warped** laws,
    :math:`\tilde p = \mathrm{softmax}(\mathrm{warp}(\ell^{p}))` with
    :func:`~spectheory.verify.warp_logits` (temperature, then top-k, then top-p), and the same
    warp for the draft. Token verification (Leviathan et al. 2023) accepts :math:`x_i` with
    probability :math:`\min(1, \tilde p_i(x_i) / \tilde q_i(x_i))` and on the first rejection
    samples :math:`\mathrm{norm}((\tilde p_i - \tilde q_i)_+)`; block verification (Sun et al.
    2024) decides the whole block jointly and accepts at least as many tokens in expectation.
    Either way each emitted sequence has exactly the law of sampling from :math:`\tilde p`
    token by token:

    .. math::
        \Pr(y_{1:m} \mid c) = \prod_{j=1}^{m} \tilde p(y_j \mid c, y_{<j}).

    **The warp must be the same on both sides.** The drafts are samples of the warped draft law
    and the verifier must see exactly that law as :math:`q` and the warped target law as
    :math:`p`. Sampling drafts with top-k/top-p/temperature but verifying against unwarped
    probabilities (or the reverse) is a common production bug that silently changes the
    output law; here both sides go through the same two functions (``draft_log_probs`` and
    ``verify_probs`` in this module), and ``tests/test_generate.py`` shows a χ² test rejecting
    the mismatched variant. ``temperature = 0`` is greedy: point masses on both sides, so the
    output is exactly greedy decoding of the target.

    **Prompt lookup.** ``draft`` may instead be a deterministic drafter such as
    :func:`spectheory.models.prompt_lookup` (any traceable
    ``fn(context int[S], length, *, num_drafts) -> PromptLookupDraft | int[num_drafts]``).
    Its drafts are a function of the context, so their law is a point mass
    :math:`q_i = \delta_{x_i}` (:func:`~spectheory.models.point_mass`, whatever the
    temperature): token verification accepts :math:`x_i` with probability
    :math:`\tilde p_i(x_i)` and otherwise samples :math:`\tilde p_i(\cdot \mid \ne x_i)`,
    a mixture equal to :math:`\tilde p_i`, so generation stays lossless (with ``"token"`` or
    ``"block"``; no draft calls are made).

    **Tree rules.** ``rule`` may be a registered one-position rule (see
    :func:`supported_rules`): the draft model grows a tree level by level (fan-out
    ``branching[t]`` at depth ``t``, children drawn by the rule's draft scheme: i.i.d., without
    replacement, or greedy, one draft call per level), the target scores the whole tree in
    one tree-mode call, :func:`~spectheory.trees.tree_verify_with_uniforms` walks it, and
    ``commit`` keeps the accepted path. Default ``branching``: ``(n,) + (1,) * (gamma - 1)``
    with ``n = rule.fixed_n`` (or 2), or ``(n,) * gamma`` when the rule is undefined for one
    draft. Other registered rules raise a ``ValueError`` listing what is supported.

    Args:
      target: the target :class:`~spectheory.models.CausalLM` (``V`` logits per position).
      draft: a draft :class:`~spectheory.models.CausalLM` with the same ``V``, or a prompt-lookup
        drafter (see above).
      prompt_ids: ``B`` prompts: a list of non-empty int sequences (ragged) or ``int[B, L]``.
      key: a ``jax.random`` key (required).
      rule: ``"token"`` (token verification), ``"block"`` (block verification), or a
        registered rule name / :class:`~spectheory.Rule` for tree verification.
      gamma: drafts per step (chain length, or default tree depth), ``>= 1``.
      max_new_tokens: tokens to generate per row, ``>= 1``.
      temperature: ``>= 0``; 0 is greedy.
      top_k: optional positive int. top_p: optional float in ``(0, 1]``.
      eos_token_id: optional; a row stops after emitting it (the EOS is kept).
      branching: tree rules only: per-level fan-outs (their number is the depth; overrides
        ``gamma``).

    Returns:
      :class:`GenerateOutput` ``(tokens int32[B, max_new_tokens], lengths int32[B],
      accepted int32[steps, B], target_calls, draft_calls)``.

    Example:
      >>> import jax, spectheory
      >>> from spectheory.models import TableLM, TableCausalLM
      >>> p = TableCausalLM(TableLM.context_free([0.5, 0.3, 0.2]))
      >>> q = TableCausalLM(TableLM.context_free([0.4, 0.4, 0.2]))
      >>> out = spectheory.generate(p, q, [[0], [1, 2]], key=jax.random.key(0), gamma=3,
      ...                           max_new_tokens=5)
      >>> out.tokens.shape, out.lengths.tolist()
      ((2, 5), [5, 5])

    References:
      Leviathan, Kalman, Matias, Fast Inference from Transformers via Speculative Decoding,
      ICML 2023 (arXiv 2211.17192); Chen et al. 2023 (arXiv 2302.01318); Sun et al., Block
      Verification Accelerates Speculative Decoding, ICLR 2025 (arXiv 2403.10444); Miao et
      al., SpecInfer (arXiv 2305.09781) for tree verification; Saxena 2023, prompt lookup.
    """
    if not isinstance(target, CausalLM):
        raise ValueError(f"target: expected a CausalLM, got {type(target).__name__}")
    lookup = _is_lookup(draft)
    if not lookup and not isinstance(draft, CausalLM):
        raise ValueError(f"draft: expected a CausalLM or a prompt-lookup drafter, got {type(draft).__name__}")
    V = int(target.vocab_size)
    if not lookup and int(draft.vocab_size) != V:
        raise ValueError(f"draft: vocab_size {draft.vocab_size} != the target's {V}")
    r = _check_rule(rule)
    if isinstance(gamma, bool) or not isinstance(gamma, (int, np.integer)) or gamma < 1:
        raise ValueError(f"gamma: must be a positive int, got {gamma!r}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens: must be a positive int, got {max_new_tokens!r}")
    warp = check_warp(temperature, top_k, top_p)
    if eos_token_id is not None and not 0 <= int(eos_token_id) < V:
        raise ValueError(f"eos_token_id: must lie in [0, {V}), got {eos_token_id!r}")
    if key is None:
        raise ValueError("key: a jax.random key is required")
    if isinstance(r, Rule):
        if lookup:
            raise ValueError("draft: prompt lookup supports the chain rules 'token' and 'block' only")
        branching = _check_branching(r, int(gamma), branching, V)
        depth = len(branching)
    elif branching is not None:
        raise ValueError("branching: only meaningful for tree rules")
    else:
        depth = int(gamma)
    prompts = _as_prompts(prompt_ids, V)
    B = len(prompts)
    plen = np.array([len(x) for x in prompts])
    max_len = int(plen.max()) + int(max_new_tokens) + depth + 1

    state = _State(prompts, int(max_new_tokens), max_len, eos_token_id)
    t_cache = _prefill(target, state, max_len)
    d_cache = None if lookup else _prefill(draft, state, max_len)
    accepted, t_calls, d_calls = [], 0, 0
    while state.active.any():
        key, k_draft, k_verify = jax.random.split(key, 3)
        if isinstance(r, Rule):
            k, emitted, t_cache, d_cache, dc = _tree_step(target, draft, t_cache, d_cache, state, r,
                                                          branching, warp, k_draft, k_verify)
        else:
            k, emitted, t_cache, d_cache, dc = _chain_step(target, draft, t_cache, d_cache, state, r,
                                                           int(gamma), warp, lookup, k_draft, k_verify)
        t_calls += 1
        d_calls += dc
        accepted.append(np.where(state.active, k, -1))
        state.append(emitted, k + 1)
    acc = np.stack(accepted) if accepted else np.zeros((0, B), np.int32)
    return GenerateOutput(jnp.asarray(state.out), jnp.asarray(state.out_len, jnp.int32),
                          jnp.asarray(acc, jnp.int32), t_calls, d_calls)


class _State:
    """Host-side bookkeeping: every row's tokens so far and what each model has not seen."""

    def __init__(self, prompts, max_new, max_len, eos):
        B = len(prompts)
        self.seq = np.zeros((B, max_len), np.int32)
        for b, p in enumerate(prompts):
            self.seq[b, :len(p)] = p
        self.slen = np.array([len(p) for p in prompts], np.int64)
        self.out = np.full((B, max_new), -1, np.int32)
        self.out_len = np.zeros(B, np.int64)
        self.active = np.ones(B, bool)
        self.max_new, self.eos = max_new, eos
        # tokens at the end of seq the draft model has not read yet (1 or 2 for a chain, up to
        # depth + 1 for a tree)
        self.d_pending = np.ones(B, np.int64)

    def last(self):
        return self.seq[np.arange(len(self.slen)), self.slen - 1]

    def append(self, emitted, counts):
        """Append ``emitted[b, :counts[b]]`` to every active row; cut at max_new / EOS."""
        for b in np.flatnonzero(self.active):
            toks = np.asarray(emitted[b, :counts[b]])
            n = int(counts[b])
            self.seq[b, self.slen[b]:self.slen[b] + n] = toks
            self.slen[b] += n
            room = self.max_new - self.out_len[b]
            take = toks[:room]
            if self.eos is not None and np.any(take == self.eos):
                take = take[: int(np.argmax(take == self.eos)) + 1]
                self.active[b] = False
            self.out[b, self.out_len[b]:self.out_len[b] + len(take)] = take
            self.out_len[b] += len(take)
            if self.out_len[b] >= self.max_new:
                self.active[b] = False


def _prefill(lm, state: _State, max_len):
    """A cache holding every prompt but its last token (the first step feeds that one)."""
    cache = lm.init_cache(len(state.slen), max_len)
    n = state.slen - 1
    T = int(n.max())
    if T > 0:
        valid = np.arange(T)[None, :] < n[:, None]
        _, cache = lm.logits(state.seq[:, :T], cache, valid=valid)
    return cache


def _chain_step(target, draft, t_cache, d_cache, st: _State, which, gamma, warp, lookup, k_draft, k_verify):
    B = len(st.slen)
    rows = np.arange(B)
    act = st.active
    V = target.vocab_size
    d_calls = 0
    if lookup:
        drafts = np.asarray(_lookup_drafts(jnp.asarray(st.seq), jnp.asarray(st.slen, jnp.int32), gamma, draft))
        q = jax.nn.one_hot(drafts, V, dtype=jnp.float32)
    else:
        # feed what the draft has not read (1 or 2 tokens, left-padded), then one token per draft
        two = st.d_pending == 2
        toks = np.stack([st.seq[rows, np.maximum(st.slen - 2, 0)], st.last()], axis=1)
        valid = np.stack([act & two, act], axis=1)
        logits, d_cache = draft.logits(toks, d_cache, valid=valid)
        d_len0 = np.asarray(draft.lengths(d_cache)) - act * st.d_pending  # before this step
        keys = jax.random.split(k_draft, gamma)
        drafts, logq = [], []
        row_logits = logits[:, -1]
        for i in range(gamma):
            lq = draft_log_probs(row_logits, *warp)
            x = jax.random.categorical(keys[i], lq, axis=-1).astype(jnp.int32)
            drafts.append(np.asarray(x))
            logq.append(lq)
            if i + 1 < gamma:
                out, d_cache = draft.logits(np.asarray(x)[:, None], d_cache, valid=act[:, None])
                row_logits = out[:, 0]
        d_calls = gamma
        drafts = np.stack(drafts, axis=1)
        q = jnp.exp(jnp.stack(logq, axis=1))
    # score last token + drafts in one target call
    t_len0 = np.asarray(target.lengths(t_cache))
    toks = np.concatenate([st.last()[:, None], drafts], axis=1)
    logits, t_cache = target.logits(toks, t_cache, valid=np.repeat(act[:, None], gamma + 1, axis=1))
    p = verify_probs(logits, *warp)
    dtype = jnp.result_type(p.dtype, q.dtype)
    u = jax.random.uniform(k_verify, (B, gamma + 1), dtype)
    res = _verify_chains(u, p.astype(dtype), q.astype(dtype), jnp.asarray(drafts), which)
    k = np.asarray(res.num_accepted).astype(np.int64)
    emitted = np.asarray(res.tokens)
    t_cache = target.rollback(t_cache, t_len0 + act * (1 + k))
    if not lookup:
        # the draft has read everything but x_gamma: keep the accepted drafts it read
        d_cache = draft.rollback(d_cache, d_len0 + act * (st.d_pending + np.minimum(k, gamma - 1)))
        st.d_pending = np.where(act, np.where(k == gamma, 2, 1), st.d_pending)
    return k, emitted, t_cache, d_cache, d_calls


# -- trees -----------------------------------------------------------------------------------


def _tree_step(target, draft, t_cache, d_cache, st: _State, r: Rule, branching, warp, k_draft, k_verify):
    from spectheory.trees._tree import DraftTree, _CHILD_SAMPLERS, _layout
    from spectheory.trees._verify import tree_num_uniforms

    B = len(st.slen)
    act = st.active
    V = target.vocab_size
    scheme = _tree_scheme(r)
    sizes, starts, N = _layout(branching)
    D = len(branching)
    # 1. feed the draft what it has not read (right-aligned, ragged): root law at the last column
    W = int(st.d_pending[act].max())
    cols = st.slen[:, None] - W + np.arange(W)[None, :]
    valid = (np.arange(W)[None, :] >= W - st.d_pending[:, None]) & act[:, None]
    toks = np.where(valid, st.seq[np.arange(B)[:, None], np.maximum(cols, 0)], 0)
    logits, d_cache = draft.logits(toks, d_cache, valid=valid)
    level_logits = logits[:, -1:]  # [B, 1, V]: the root
    # 2. grow the tree level by level
    token = np.zeros((B, N), np.int32)
    parent = np.full((B, N), -1, np.int32)
    alive_all = np.zeros((B, N), bool)
    q_rows = []
    alive = act[:, None].copy()  # [B, M] parents alive
    keys = jax.random.split(k_draft, D)
    d_calls = 1
    sampler = _CHILD_SAMPLERS[scheme]
    for t, b in enumerate(branching):
        lq = draft_log_probs(level_logits, *warp)  # [B, M, V]
        M = lq.shape[1]
        q_rows.append(jnp.where(jnp.asarray(alive)[..., None], jnp.exp(lq), 1.0 / V))
        kk = jax.random.split(keys[t], B * M)
        tok, ok = jax.vmap(lambda k_, l_: sampler(k_, l_, b))(kk, lq.reshape(B * M, V))
        tok = np.asarray(tok).reshape(B, M * b)
        ok = np.asarray(ok).reshape(B, M, b) & alive[:, :, None]
        ok = ok.reshape(B, M * b)
        lo = starts[t]
        token[:, lo:lo + M * b] = np.where(ok, tok, 0)
        par = np.repeat(np.arange(M) + (starts[t - 1] if t > 0 else 0), b) if t > 0 else np.full(b, -1)
        parent[:, lo:lo + M * b] = np.where(ok, par[None, :], -1)
        alive_all[:, lo:lo + M * b] = ok
        alive = ok
        if t + 1 < D:
            n_so_far = lo + M * b
            out, d_cache = draft.logits(token[:, :n_so_far], d_cache, valid=alive_all[:, :n_so_far],
                                        parents=parent[:, :n_so_far])
            level_logits = out[:, lo:lo + M * b]
            d_calls += 1
    dtype = q_rows[0].dtype
    q = jnp.concatenate(q_rows + [jnp.full((B, sizes[-1], V), 1.0 / V, dtype)], axis=1)
    depth_of = np.repeat(np.arange(1, D + 1), sizes)
    depth = np.where(alive_all, depth_of[None, :], 0).astype(np.int32)
    Bw = max(branching)
    children = np.full((B, N + 1, Bw), -1, np.int32)
    for bb in range(B):
        fill = np.zeros(N + 1, np.int64)
        for i in range(N):
            if alive_all[bb, i]:
                row = parent[bb, i] + 1
                children[bb, row, fill[row]] = i
                fill[row] += 1
    num = (children >= 0).sum(-1).astype(np.int32)
    tree = DraftTree(jnp.asarray(token), jnp.asarray(parent), jnp.asarray(depth), jnp.asarray(children),
                     jnp.asarray(num), jnp.asarray(alive_all), scheme, D)
    # 3. one target call on [last token, nodes]; node i's parent is call slot parent[i] + 1
    t_toks = np.concatenate([st.last()[:, None], token], axis=1)
    t_par = np.concatenate([np.full((B, 1), -1), np.where(alive_all, parent + 1, -1)], axis=1)
    t_valid = np.concatenate([act[:, None], alive_all], axis=1)
    logits, t_cache = target.logits(t_toks, t_cache, valid=t_valid, parents=t_par)
    p = verify_probs(logits, *warp)
    dt = jnp.result_type(p.dtype, q.dtype)
    one = jax.tree_util.tree_map(lambda a: a[0], tree)
    nu = tree_num_uniforms(one, r, V)
    u = jax.random.uniform(k_verify, (B, nu), dt)
    res = _verify_trees(u, tree, p.astype(dt), q.astype(dt), r)
    k = np.asarray(res.num_accepted).astype(np.int64)
    nodes = np.asarray(res.nodes)
    keep = np.zeros((B, N + 1), bool)
    keep[:, 0] = act
    for bb in np.flatnonzero(act):
        keep[bb, nodes[bb, :k[bb]] + 1] = True
    t_cache = target.commit(t_cache, keep)
    st.d_pending = np.where(act, k + 1, st.d_pending)
    return k, np.asarray(res.tokens), t_cache, d_cache, d_calls


@functools.partial(jax.jit, static_argnames=("r",))
def _verify_trees(u, tree, p, q, r):
    from spectheory.trees._verify import tree_verify_with_uniforms

    return jax.vmap(lambda uu, tt, pp, qq: tree_verify_with_uniforms(uu, tt, pp, qq, r))(u, tree, p, q)
