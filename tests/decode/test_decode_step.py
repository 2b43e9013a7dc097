"""The decoding kernel itself: init, build_step, StepInfo, proposers, pairing.

Blackjax style: deterministic stubs (a verifier that accepts a fixed pattern, a proposer that
drafts fixed tokens) are injected so that the expected state after every step is written by
hand; stepping by hand must reproduce generate; a user-written Proposer is checked by a
chi-square test against the warped target law enumerated from the tables (_decode_oracles).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spectheory
from spectheory import ChainVerifier
from spectheory.audit import chi_square_test
from spectheory.decode import (
    DecodeState,
    DraftModelState,
    Proposal,
    Proposer,
    StepInfo,
    build_step,
    chain_proposer,
    chain_tree,
    init,
    lookup_proposer,
    supported_verifiers,
    tree_proposer,
)
from spectheory.decode import _generate, _kernel, _proposers
from spectheory.models import TableCausalLM, TableLM, prompt_lookup
from spectheory.verify import BLOCK, TOKEN, ChainResult

from _decode_oracles import encode, law_vector, warped_sequence_law

ALPHA = 1e-3
V = 4
TARGET = TableLM.random(V, 6, seed=21, concentration=1.0)
DRAFT = TableLM.random(V, 6, seed=22, concentration=1.0)
CORRECTION = 3  # the token the stub verifier emits after the accepted drafts


def _stub_verify(u, p, q, drafts):
    """Accept the longest prefix of drafts equal to 1, then emit CORRECTION (no randomness)."""
    g = drafts.shape[0]
    k = jnp.sum(jnp.cumprod((drafts == 1).astype(jnp.int32)))
    pos = jnp.arange(g + 1)
    base = jnp.concatenate([drafts, jnp.full((1,), -1, drafts.dtype)])
    tokens = jnp.where(pos < k, base, -1)
    return ChainResult(jnp.where(pos == k, CORRECTION, tokens).astype(jnp.int32), k.astype(jnp.int32))


STUB = ChainVerifier(name="stub", verify=None, verify_with_uniforms=_stub_verify, kernel=None,
                     num_uniforms=lambda g: g + 1, description="accepts the leading 1s")


def _fixed_drafts(context, length, *, num_drafts):
    """Rows whose prompt starts with 2 draft (1, 1, 2): two accepted; the others (2, 1, 1): none."""
    first = jnp.where(context[0] == 2, jnp.array([1, 1, 2]), jnp.array([2, 1, 1]))
    return first[:num_drafts].astype(jnp.int32)


def _target():
    return TableCausalLM(TARGET)


# -- init --------------------------------------------------------------------------------------


def test_init_writes_prompts_and_prefills():
    target, draft = _target(), TableCausalLM(DRAFT)
    prop = chain_proposer(draft, 3)
    s = init(target, prop, [[2], [1, 0, 3]], max_new_tokens=5, eos_token_id=0)
    assert isinstance(s, DecodeState)
    L = 3 + 5 + 3 + 1  # longest prompt + budget + depth + 1
    assert s.tokens.shape == (2, L) and s.tokens.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(s.tokens)[:, :3], [[2, 0, 0], [1, 0, 3]])
    np.testing.assert_array_equal(np.asarray(s.lengths), [1, 3])
    np.testing.assert_array_equal(np.asarray(s.prompt_lengths), [1, 3])
    np.testing.assert_array_equal(np.asarray(s.num_generated), [0, 0])
    np.testing.assert_array_equal(np.asarray(s.active), [True, True])
    assert int(s.max_new_tokens) == 5 and int(s.eos_token_id) == 0
    # both models read every prompt but its last token
    np.testing.assert_array_equal(np.asarray(target.lengths(s.target_cache)), [0, 2])
    assert isinstance(s.proposer_state, DraftModelState)
    np.testing.assert_array_equal(np.asarray(draft.lengths(s.proposer_state.cache)), [0, 2])
    np.testing.assert_array_equal(s.proposer_state.read, [0, 2])
    assert s.target_cache.rows == [[], [1, 0]]


def test_init_validation():
    target = _target()
    prop = lookup_proposer(_fixed_drafts, 3)
    with pytest.raises(ValueError, match="target"):
        init(object(), prop, [[0]], max_new_tokens=2)
    with pytest.raises(ValueError, match="proposer"):
        init(target, TableCausalLM(DRAFT), [[0]], max_new_tokens=2)
    with pytest.raises(ValueError, match="prompts"):
        init(target, prop, [[0], [4]], max_new_tokens=2)
    with pytest.raises(ValueError, match="prompts"):
        init(target, prop, np.zeros(3, int), max_new_tokens=2)
    with pytest.raises(ValueError, match="max_new_tokens"):
        init(target, prop, [[0]], max_new_tokens=1.5)
    with pytest.raises(ValueError, match="eos_token_id"):
        init(target, prop, [[0]], max_new_tokens=2, eos_token_id=-1)
    with pytest.raises(ValueError, match="draft_lm"):
        init(target, chain_proposer(TableCausalLM(TableLM.random(3, 2)), 2), [[0]], max_new_tokens=2)


# -- a deterministic stub drives the state ------------------------------------------------------


def test_stub_step_drives_the_state_by_hand():
    """Row 0 (prompt 2) drafts (1, 1, 2): the stub accepts 2 and emits 3; row 1 (prompt 0, 0)
    drafts (2, 1, 1): accepts 0, emits 3. Budget 5; EOS none."""
    target = _target()
    prop = lookup_proposer(_fixed_drafts, 3)
    step = build_step(target, prop, STUB)
    s = init(target, prop, [[2], [0, 0]], max_new_tokens=5)
    keys = jax.random.split(jax.random.key(0), 4)

    s, info = step(keys[0], s)
    assert isinstance(info, StepInfo)
    np.testing.assert_array_equal(np.asarray(info.num_accepted), [2, 0])
    np.testing.assert_array_equal(np.asarray(info.tokens), [[1, 1, 3, -1], [3, -1, -1, -1]])
    assert (info.target_calls, info.draft_calls) == (1, 0)
    np.testing.assert_array_equal(np.asarray(s.lengths), [4, 3])
    np.testing.assert_array_equal(np.asarray(s.num_generated), [3, 1])
    np.testing.assert_array_equal(np.asarray(s.active), [True, True])
    np.testing.assert_array_equal(np.asarray(s.tokens)[:, :4], [[2, 1, 1, 3], [0, 0, 3, 0]])
    # the target rolled back, per row, to the context but its last token
    np.testing.assert_array_equal(np.asarray(target.lengths(s.target_cache)), [3, 2])
    assert s.target_cache.rows == [[2, 1, 1], [0, 0]]

    s, info = step(keys[1], s)  # row 0: 3 more would exceed the budget: 2 count
    np.testing.assert_array_equal(np.asarray(info.num_accepted), [2, 0])
    np.testing.assert_array_equal(np.asarray(s.lengths), [7, 4])
    np.testing.assert_array_equal(np.asarray(s.num_generated), [5, 2])
    np.testing.assert_array_equal(np.asarray(s.active), [False, True])
    np.testing.assert_array_equal(np.asarray(s.tokens)[0, :7], [2, 1, 1, 3, 1, 1, 3])  # the overshoot stays
    np.testing.assert_array_equal(np.asarray(target.lengths(s.target_cache)), [6, 3])

    s, info = step(keys[2], s)  # row 0 is finished: untouched, -1 in the info
    np.testing.assert_array_equal(np.asarray(info.num_accepted), [-1, 0])
    np.testing.assert_array_equal(np.asarray(info.tokens)[0], [-1, -1, -1, -1])
    np.testing.assert_array_equal(np.asarray(s.lengths), [7, 5])
    np.testing.assert_array_equal(np.asarray(s.num_generated), [5, 3])
    np.testing.assert_array_equal(np.asarray(target.lengths(s.target_cache)), [6, 4])


def test_stub_step_stops_at_eos_and_keeps_it():
    target = _target()
    prop = lookup_proposer(_fixed_drafts, 3)
    step = build_step(target, prop, STUB)
    s = init(target, prop, [[2], [0, 0]], max_new_tokens=8, eos_token_id=CORRECTION)
    s, info = step(jax.random.key(0), s)
    np.testing.assert_array_equal(np.asarray(s.num_generated), [3, 1])
    np.testing.assert_array_equal(np.asarray(s.active), [False, False])
    out = _generate._output_tokens(s.tokens, s.prompt_lengths, s.num_generated, 8)
    np.testing.assert_array_equal(np.asarray(out), [[1, 1, 3] + [-1] * 5, [3] + [-1] * 7])
    # and through generate
    g = spectheory.generate(jax.random.key(0), target, prop, [[2], [0, 0]], verifier=STUB, max_new_tokens=8,
                            eos_token_id=CORRECTION)
    np.testing.assert_array_equal(np.asarray(g.tokens), np.asarray(out))
    np.testing.assert_array_equal(np.asarray(g.accepted), [[2, 0]])


def test_stub_step_rolls_back_a_draft_model():
    """Chain proposer with a draft model and the stub verifier: the draft cache keeps the
    accepted drafts it read (never the last draft), so a row that accepted everything has two
    tokens pending at the next step."""
    target, draft = _target(), TableCausalLM(TableLM(V, {}, default=[0.0, 1.0, 0.0, 0.0]))  # always drafts 1
    prop = chain_proposer(draft, 3)
    step = build_step(target, prop, STUB)
    s = init(target, prop, [[2], [0, 0]], max_new_tokens=20)
    s, info = step(jax.random.key(0), s)
    np.testing.assert_array_equal(np.asarray(info.num_accepted), [3, 3])
    np.testing.assert_array_equal(np.asarray(info.tokens), [[1, 1, 1, 3], [1, 1, 1, 3]])
    # the draft read prompt + x1, x2 (not x3): 1 + 2 and 2 + 2 tokens
    np.testing.assert_array_equal(s.proposer_state.read, [3, 4])
    np.testing.assert_array_equal(np.asarray(draft.lengths(s.proposer_state.cache)), [3, 4])
    assert s.proposer_state.cache.rows == [[2, 1, 1], [0, 0, 1, 1]]
    s, info = step(jax.random.key(1), s)  # reads x3 and the correction, then 3 drafts
    assert s.proposer_state.cache.rows == [[2, 1, 1, 1, 3, 1, 1], [0, 0, 1, 1, 1, 3, 1, 1]]
    assert info.draft_calls == 3


# -- StepInfo counts and the appended tokens ---------------------------------------------------


@pytest.mark.parametrize("kind", ["chain", "tree", "lookup"])
def test_step_info_counts_and_tokens(kind):
    target, draft = _target(), TableCausalLM(DRAFT)
    if kind == "chain":
        prop, verifier, calls = chain_proposer(draft, 3), TOKEN, 3
    elif kind == "tree":
        prop, verifier, calls = tree_proposer(draft, "iid", (2, 2, 1)), "specinfer", 3
    else:
        prop, verifier, calls = lookup_proposer(prompt_lookup, 3), BLOCK, 0
    step = build_step(target, prop, verifier)
    s = init(target, prop, [[0, 1, 0, 1], [2]], max_new_tokens=40)
    key = jax.random.key(5)
    for _ in range(4):
        key, k = jax.random.split(key)
        before = s
        s, info = step(k, s)
        assert (info.target_calls, info.draft_calls) == (1, calls)
        acc = np.asarray(info.num_accepted)
        assert info.tokens.shape == (2, len(prop.branching) + 1)
        for b in range(2):
            n0, n1 = int(before.lengths[b]), int(s.lengths[b])
            assert n1 - n0 == acc[b] + 1
            emitted = np.asarray(info.tokens[b])
            np.testing.assert_array_equal(emitted[:acc[b] + 1], np.asarray(s.tokens[b, n0:n1]))
            assert np.all(emitted[acc[b] + 1:] == -1) and np.all(emitted[:acc[b] + 1] >= 0)
        np.testing.assert_array_equal(np.asarray(target.lengths(s.target_cache)), np.asarray(s.lengths) - 1)


# -- stepping by hand == generate ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["chain", "tree", "lookup"])
def test_stepping_by_hand_equals_generate(kind):
    prompts = [[0, 1, 0, 1], [2], [3, 3]]
    verifier = {"chain": BLOCK, "tree": "rsd", "lookup": "single"}[kind]

    def proposer():
        draft = TableCausalLM(DRAFT)
        return {"chain": chain_proposer(draft, 2), "tree": tree_proposer(draft, "without_replacement", (2, 2)),
                "lookup": lookup_proposer(prompt_lookup, 2)}[kind]

    key = jax.random.key(11)
    out = spectheory.generate(key, _target(), proposer(), prompts, verifier=verifier, max_new_tokens=9,
                              temperature=0.8)
    target, prop = _target(), proposer()
    state = init(target, prop, prompts, max_new_tokens=9)
    step = build_step(target, prop, verifier, temperature=0.8)
    accepted = []
    while np.any(np.asarray(state.active)):
        key, k = jax.random.split(key)
        state, info = step(k, state)
        accepted.append(np.asarray(info.num_accepted))
        if len(accepted) == 2:  # the state after 2 steps holds a prefix of generate's output
            for b in range(3):
                n, p0 = int(state.num_generated[b]), len(prompts[b])
                np.testing.assert_array_equal(np.asarray(state.tokens[b, p0:p0 + n]), np.asarray(out.tokens[b, :n]))
            np.testing.assert_array_equal(np.asarray(out.accepted[:2]), np.stack(accepted))
    assert len(accepted) >= 3  # at most 3 tokens a step, 9 to generate
    np.testing.assert_array_equal(np.stack(accepted), np.asarray(out.accepted))
    np.testing.assert_array_equal(np.asarray(state.num_generated), np.asarray(out.lengths))
    assert out.target_calls == len(accepted)


# -- a user-written Proposer ---------------------------------------------------------------------


def unigram_proposer(law, gamma):
    """Context-free drafts from one fixed law (not a CausalLM): the Proposer contract by hand."""
    logits = jnp.log(jnp.asarray(law))

    def init_fn(tokens, lengths, vocab_size):
        assert logits.shape == (vocab_size,)
        return 0  # counts the steps

    def propose(key, state, tokens, lengths, active, log_law):
        B = tokens.shape[0]
        lq = jnp.broadcast_to(log_law(logits), (B, gamma + 1, logits.shape[0]))
        drafts = jax.random.categorical(key, lq[:, :gamma], axis=-1)
        return Proposal(chain_tree(drafts), jnp.exp(lq), 0), state

    def update(state, proposal, num_accepted, nodes, active):
        return state + 1

    return Proposer(init_fn, propose, update, spectheory.drafts.IID, (1,) * gamma)


@pytest.mark.parametrize("verifier", [TOKEN, "single"], ids=["token", "single"])
def test_user_written_proposer_is_lossless_chi_square(verifier):
    tp = TableLM.random(3, 6, seed=11, concentration=1.0)
    warp = (0.7, 2, None)
    out = spectheory.generate(jax.random.key(4), TableCausalLM(tp), unigram_proposer([0.2, 0.5, 0.3], 2),
                              [[0]] * 3000, verifier=verifier, max_new_tokens=3, temperature=warp[0], top_k=warp[1])
    law = law_vector(warped_sequence_law(tp, (0,), 3, warp), 3)
    res = chi_square_test(encode(out.tokens, out.lengths, 3, 3), law, alpha=ALPHA)
    assert res.passed, res
    assert np.asarray(out.accepted).max() == 2


def test_user_written_proposer_state_is_threaded():
    target = _target()
    prop = unigram_proposer([0.25] * 4, 2)
    step = build_step(target, prop, TOKEN)
    s = init(target, prop, [[0]], max_new_tokens=30)
    assert s.proposer_state == 0
    for i in range(3):
        s, _ = step(jax.random.key(i), s)
    assert s.proposer_state == 3


def test_a_bad_proposal_is_refused():
    target = _target()

    def propose(key, state, tokens, lengths, active, log_law):
        drafts = jnp.full((tokens.shape[0], 2), V)  # out of range
        return Proposal(chain_tree(drafts), jnp.full((tokens.shape[0], 3, V), 1.0 / V), 0), state

    prop = Proposer(lambda *a: None, propose, lambda s, *a: s, spectheory.drafts.IID, (1, 1))
    with pytest.raises(ValueError, match="proposer"):
        build_step(target, prop, TOKEN)(jax.random.key(0), init(target, prop, [[0]], max_new_tokens=3))
    too_long = lookup_proposer(lambda c, n, *, num_drafts: jnp.zeros(num_drafts + 1, jnp.int32), 2)
    with pytest.raises(ValueError, match="fn"):
        spectheory.generate(jax.random.key(0), target, too_long, [[0]], max_new_tokens=3)


# -- pairing and validation ---------------------------------------------------------------------


def test_pairing_errors_name_the_argument():
    target, draft = _target(), TableCausalLM(DRAFT)
    tree = tree_proposer(draft, "iid", (2, 1))
    with pytest.raises(ValueError, match="^verifier: the chain verifier 'token'"):
        build_step(target, tree, TOKEN)
    with pytest.raises(ValueError, match="^verifier: the chain verifier 'block'"):
        build_step(target, tree, BLOCK)
    with pytest.raises(ValueError, match="^verifier: rule 'rsd' assumes draft scheme 'without_replacement'"):
        build_step(target, tree, "rsd")
    with pytest.raises(ValueError, match="^verifier: rule 'greedy'"):
        build_step(target, chain_proposer(draft, 2), spectheory.rule("greedy"))
    with pytest.raises(ValueError, match="^verifier: rule 'optimal' is host-only"):
        build_step(target, chain_proposer(draft, 2), "optimal")
    with pytest.raises(ValueError, match="^verifier: no registered rule"):
        build_step(target, tree, "token")
    with pytest.raises(ValueError, match="^verifier: expected"):
        build_step(target, tree, spectheory.verify.SINGLE)  # a Verifier is not a Rule
    with pytest.raises(ValueError, match="^branching: rule 'single'"):
        build_step(target, tree, "single")
    with pytest.raises(ValueError, match="^target"):
        build_step(draft.table, tree, "specinfer")
    with pytest.raises(ValueError, match="^proposer"):
        build_step(target, draft, "specinfer")
    with pytest.raises(ValueError, match="^temperature"):
        build_step(target, tree, "specinfer", temperature=-1.0)
    # what pairs: a chain of i.i.d. drafts (or point masses) verified as a tree by "single"
    build_step(target, chain_proposer(draft, 2), "single")
    build_step(target, lookup_proposer(prompt_lookup, 2), "specinfer")
    build_step(target, tree_proposer(draft, "iid", (1, 1)), TOKEN)


def test_kernel_inputs_are_checked():
    """build_step refuses unaudited wrong rules and malformed proposers; step checks its key
    and state; init a malformed proposer; every message names the argument."""
    from spectheory.testing import naive_independent_rule

    target, draft = _target(), TableCausalLM(DRAFT)
    tree = tree_proposer(draft, "iid", (2, 1))
    with pytest.raises(ValueError, match="^verifier: rule 'naive-independent' is not lossless"):
        build_step(target, tree, naive_independent_rule)
    with pytest.raises(ValueError, match="^verifier: .*drafts.law"):
        build_step(target, tree, spectheory.rule("specinfer")._replace(
            name="broken", drafts=spectheory.drafts.IID._replace(law=None)))
    with pytest.raises(ValueError, match="^verifier: ChainVerifier 'stub': verify_with_uniforms"):
        build_step(target, chain_proposer(draft, 2), STUB._replace(verify_with_uniforms=None))
    for bad in (tree._replace(branching=(0,)), tree._replace(scheme="iid"), tree._replace(propose=None)):
        with pytest.raises(ValueError, match="^proposer"):
            build_step(target, bad, "specinfer")
        with pytest.raises(ValueError, match="^proposer"):
            init(target, bad, [[0]], max_new_tokens=2)
    with pytest.raises(ValueError, match="^fn: the drafter must be hashable"):
        lookup_proposer(type("Unhashable", (), {"__call__": lambda self, *a, **k: None, "__hash__": None})(), 2)
    step = build_step(target, tree, "specinfer")
    state = init(target, tree, [[0]], max_new_tokens=2)
    with pytest.raises(ValueError, match="^key"):
        step(0, state)
    with pytest.raises(ValueError, match="^state"):
        step(jax.random.key(0), state._asdict())
    step(jax.random.key(0), state)  # the same call with good input runs


def test_proposer_validation():
    draft = TableCausalLM(DRAFT)
    with pytest.raises(ValueError, match="draft_lm"):
        chain_proposer(prompt_lookup, 2)
    with pytest.raises(ValueError, match="gamma"):
        chain_proposer(draft, 0)
    with pytest.raises(ValueError, match="gamma"):
        lookup_proposer(prompt_lookup, True)
    with pytest.raises(ValueError, match="fn"):
        lookup_proposer(draft, 2)
    with pytest.raises(ValueError, match="scheme"):
        tree_proposer(draft, "hub", (2,))
    with pytest.raises(ValueError, match="scheme"):
        tree_proposer(draft, "nope", (2,))
    with pytest.raises(ValueError, match="branching"):
        tree_proposer(draft, "iid", ())
    with pytest.raises(ValueError, match="branching"):
        tree_proposer(draft, "iid", (2, 1.5))
    with pytest.raises(ValueError, match="drafts"):
        chain_tree(jnp.zeros(3, jnp.int32))


def test_supported_verifiers():
    sv = supported_verifiers()
    assert sv[0] is TOKEN and sv[1] is BLOCK
    names = [v for v in sv if isinstance(v, str)]
    assert {"single", "specinfer", "rsd", "spectr", "greedy"} <= set(names)
    assert "optimal" not in names and "spechub" not in names  # host-only; no tree child sampler
    for name in names:
        r = spectheory.rule(name)
        assert r.drafts.children is not None and not r.verifier.host_only


def test_chain_tree_is_a_chain():
    t = chain_tree(jnp.array([[2, 0, 1], [1, 1, 1]]))
    np.testing.assert_array_equal(np.asarray(t.parent), [[-1, 0, 1]] * 2)
    np.testing.assert_array_equal(np.asarray(t.depth), [[1, 2, 3]] * 2)
    np.testing.assert_array_equal(np.asarray(t.children)[0, :, 0], [0, 1, 2, -1])
    np.testing.assert_array_equal(np.asarray(t.num_children), [[1, 1, 1, 0]] * 2)
    assert t.scheme is spectheory.drafts.IID and t.max_depth == 3


# -- compilation: one per shape ------------------------------------------------------------------


def test_jitted_pieces_compile_once_per_shape():
    """A second generate with the same shapes (another key, another warp value of the same kind
    does recompile by design: the warp is static) reuses every compiled piece."""
    target, draft = _target(), TableCausalLM(DRAFT)
    pieces = [_kernel._verify_chain, _kernel._advance, _proposers._draw, _proposers._chain_out]

    def run(seed):
        return spectheory.generate(jax.random.key(seed), target, draft, [[0], [1, 2]], gamma=2, max_new_tokens=6,
                                   temperature=0.9)

    run(0)
    sizes = [f._cache_size() for f in pieces]
    run(1)
    assert [f._cache_size() for f in pieces] == sizes
