"""Speculative generation (spectheory.generate, i.e. spectheory.decode) with CausalLMs.

Expected values come from independent routes: greedy autoregressive decoding by full recompute
(torch / plain jnp), the target's sequence law computed from its tables with a NumPy warp, an
enumeration of the speculative algorithm through the chain kernels and, for tree rules, through
the draft schemes' children laws and the node kernels, and per-position acceptance
measured by separate forward passes.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spectheory
from spectheory.audit import chi_square_test, kernel_table
from spectheory.decode import _laws, chain_proposer, lookup_proposer, tree_proposer
from spectheory.models import TableCausalLM, TableLM, prompt_lookup
from spectheory.verify import BLOCK, TOKEN

from _causal_lm_checks import Mirror, check_incremental, check_speculative_rollback, check_tree, ragged_prefill
from _decode_oracles import encode, law_vector, np_warp, warped_sequence_law

ALPHA = 1e-3  # stated significance level of every chi-square test (fixed keys)


def speculative_law(target: TableLM, draft: TableLM, prefix, m, gamma, warp, kernel, draft_warp=None):
    """Exact law of the first m tokens emitted by speculative decoding, by enumerating every draft
    chain (drawn from the warped draft law) and weighting the (accepted, next token) kernel.
    ``draft_warp`` (default ``warp``) is the warp the drafts were drawn with; the verifier is
    always given ``warp`` for both laws unless they differ (the mismatch bug)."""
    V = target.vocab_size
    dw = warp if draft_warp is None else draft_warp
    out: dict = {}

    def rec(ctx, emitted, mass):
        if len(emitted) >= m:
            key = tuple(emitted[:m])
            out[key] = out.get(key, 0.0) + mass
            return
        for xs in itertools.product(range(V), repeat=gamma):
            c, qd, qv, pv = list(ctx), [], [], []
            for x in xs:
                qd.append(np_warp(draft.next_law(c), *dw))
                qv.append(np_warp(draft.next_law(c), *warp))
                pv.append(np_warp(target.next_law(c), *warp))
                c.append(x)
            pv.append(np_warp(target.next_law(c), *warp))
            w = mass * np.prod([qd[i][x] for i, x in enumerate(xs)])
            if w == 0:
                continue
            with jax.enable_x64(True):
                K = np.asarray(kernel(jnp.asarray(np.stack(pv)), jnp.asarray(np.stack(qv)), jnp.asarray(xs)))
            for k in range(gamma + 1):
                for y in np.flatnonzero(K[k] > 0):
                    new = list(xs[:k]) + [int(y)]
                    rec(ctx + new, emitted + new, w * K[k, y])

    rec(list(prefix), [], 1.0)
    return out


TP = TableLM.random(3, 6, seed=11, concentration=1.0)
TQ = TableLM.random(3, 6, seed=12, concentration=1.0)
WARPS = [(1.0, None, None), (0.7, 2, None), (1.3, None, 0.8)]


# -- the TableCausalLM adapter fulfils the CausalLM contract -------------------------------------


def test_table_causal_lm_contract():
    lm = TableCausalLM(TableLM.random(4, 8, seed=3))

    def reference(seq):
        return np.log(np.maximum([lm.table.next_law(seq[:i + 1]) for i in range(len(seq))], 1e-300))

    m = Mirror(lm, reference, 3, np.random.default_rng(0), atol=1e-9, rtol=1e-9)
    ragged_prefill(m, [2, 0, 3])
    check_incremental(m)
    check_speculative_rollback(m)
    check_tree(m, T=5)


# -- exactness of the algorithm: enumeration through the kernels ---------------------------------


@pytest.mark.parametrize("warp", WARPS)
@pytest.mark.parametrize("kernel", [TOKEN.kernel, BLOCK.kernel], ids=["token", "block"])
def test_speculative_law_equals_warped_target_law_exactly(warp, kernel):
    want = warped_sequence_law(TP, (0,), 3, warp)
    got = speculative_law(TP, TQ, (0,), 3, 2, warp, kernel)
    keys = sorted(want)
    np.testing.assert_allclose([got.get(s, 0.0) for s in keys], [want[s] for s in keys], atol=1e-12)
    assert set(got) <= set(want)


def speculative_tree_law(target: TableLM, draft: TableLM, prefix, m, branching, warp, rule):
    """Exact law of the first m tokens ``generate`` emits with a tree rule: every step grows a
    draft tree whose node children are drawn by the rule's scheme (``children_law``) from the
    warped draft law, and the rule's kernel at every node decides (descend into the child
    carrying the emitted token, else stop; a bonus token from the target at depth D). The
    warped laws are the ones ``generate`` hands the verifier (``_laws.draft_log_probs`` and
    ``_laws.verify_probs``, float64); subtrees are independent given their path, so the tree
    law is enumerated node by node."""
    D = len(branching)
    steps: dict = {}

    def laws(ctx):
        with jax.enable_x64(True):
            lp = jnp.log(jnp.asarray(target.next_law(list(ctx)), jnp.float64))
            lq = jnp.log(jnp.asarray(draft.next_law(list(ctx)), jnp.float64))
            return (np.asarray(_laws.verify_probs(lp, *warp), np.float64),
                    np.exp(np.asarray(_laws.draft_log_probs(lq, *warp), np.float64)))

    def step_law(ctx):
        if ctx in steps:
            return steps[ctx]
        out: dict = {}

        def node(path, mass):
            p, q = laws(ctx + path)
            if len(path) == D:
                for y in np.flatnonzero(p > 0):
                    out[path + (int(y),)] = out.get(path + (int(y),), 0.0) + mass * p[y]
                return
            tuples, probs = rule.drafts.children_law(q, branching[len(path)])
            K = kernel_table(rule.verifier.kernel, p, q, tuples)
            for tup, w, row in zip(np.asarray(tuples), probs, K):
                for y in np.flatnonzero(row > 0):
                    if int(y) in tup.tolist():
                        node(path + (int(y),), mass * w * row[y])
                    else:
                        out[path + (int(y),)] = out.get(path + (int(y),), 0.0) + mass * w * row[y]

        node((), 1.0)
        steps[ctx] = out
        return out

    law: dict = {}

    def rec(ctx, emitted, mass):
        if len(emitted) >= m:
            key = emitted[:m]
            law[key] = law.get(key, 0.0) + mass
            return
        for seq, w in step_law(ctx).items():
            rec(ctx + seq, emitted + seq, mass * w)

    rec(tuple(prefix), (), 1.0)
    return law


#: Registered rules usable at the nodes of a draft tree (plugins included), with the branching
#: of the exact tree audit: the chi-square grid's, else generate's default for gamma = 2.
TREE_RULES = [v for v in spectheory.decode.supported_verifiers() if isinstance(v, str)]


def _tree_branching(name):
    from spectheory.decode._generate import _default_branching

    return TREE_BRANCHING.get(name) or _default_branching(spectheory.rule(name), 2, None, TP.vocab_size)


@pytest.mark.parametrize("warp", WARPS)
@pytest.mark.parametrize("name", TREE_RULES)
def test_tree_speculative_law_equals_warped_target_law_exactly(name, warp):
    """Every tree rule inside generate, exactly: the law of the first 3 emitted tokens (trees of
    generate's branching, several steps) is the warped target's to 1e-12 in float64."""
    want = warped_sequence_law(TP, (0,), 3, warp)
    got = speculative_tree_law(TP, TQ, (0,), 3, _tree_branching(name), warp, spectheory.rule(name))
    assert set(got) <= set(want)
    keys = sorted(want)
    np.testing.assert_allclose([got.get(s, 0.0) for s in keys], [want[s] for s in keys], rtol=0, atol=1e-12)


def test_tree_speculative_law_detects_a_wrong_rule():
    """Negative control: the same enumeration rejects the package's deliberately wrong rule
    (independent single-draft tests of i.i.d. children) by far more than the tolerance."""
    from spectheory.testing import naive_independent_rule

    want = warped_sequence_law(TP, (0,), 2, WARPS[0])
    got = speculative_tree_law(TP, TQ, (0,), 2, (2, 1), WARPS[0], naive_independent_rule)
    assert max(abs(got.get(s, 0.0) - want[s]) for s in want) > 1e-2


def test_mismatched_warp_is_not_lossless_exactly():
    """Drafts from the warped draft law, verified against unwarped laws: the exact law differs."""
    warp = (0.5, 2, None)
    want = warped_sequence_law(TP, (0,), 2, warp)
    got = speculative_law(TP, TQ, (0,), 2, 2, (1.0, None, None), TOKEN.kernel, draft_warp=warp)
    tv = 0.5 * sum(abs(got.get(s, 0.0) - want[s]) for s in want)
    assert tv > 0.05


# -- the code: chi-square on fixed keys ----------------------------------------------------------

#: Tree fan-outs of the built-in tree rules in the chi-square grid (at most 3 levels of 3 tokens);
#: any other registered rule (e.g. a plugin) gets generate's default branching.
TREE_BRANCHING = {"specinfer": (2, 1), "rsd": (2, 2), "spectr": (3, 1), "greedy": (2, 1)}
#: Every verifier decoding supports (the registry is iterated, so registered plugins are tested
#: too), with the draft tree a draft CausalLM gets for it (None: the chain, or generate's
#: default tree). Tree rules run at every node of a tree grown through the draft model; "single"
#: gets the default branching (1, 1): a chain verified as a tree.
VERIFIERS = [(TOKEN, None), (BLOCK, None)] + [
    (v, TREE_BRANCHING.get(v)) for v in spectheory.decode.supported_verifiers() if isinstance(v, str)]


def _name(v):
    return v if isinstance(v, str) else v.name


def _sample(verifier, warp, draft=None, n=3000, m=3, gamma=2, seed=0, prompt=(0,), branching=None):
    out = spectheory.generate(jax.random.key(seed), TableCausalLM(TP), TableCausalLM(TQ) if draft is None else draft,
                              [list(prompt)] * n, verifier=verifier, gamma=gamma, max_new_tokens=m,
                              temperature=warp[0], top_k=warp[1], top_p=warp[2], branching=branching)
    return encode(out.tokens, out.lengths, 3, m), out


def test_the_grid_holds_the_built_in_verifiers():
    assert {"token", "block", "single", "specinfer", "rsd", "spectr", "greedy"} <= {_name(v) for v, _ in VERIFIERS}


@pytest.mark.parametrize("w", range(len(WARPS)))
@pytest.mark.parametrize("v", range(len(VERIFIERS)), ids=[_name(v) for v, _ in VERIFIERS])
def test_generated_law_matches_warped_target_chi_square(v, w):
    """generate's own output, every verifier x warp: the law of the first 3 generated tokens is
    the warped target's (chi-square at ALPHA on fixed keys); drafts were accepted."""
    verifier, branching = VERIFIERS[v]
    warp = WARPS[w]
    samples, out = _sample(verifier, warp, seed=10 * v + w, branching=branching)
    res = chi_square_test(samples, law_vector(warped_sequence_law(TP, (0,), 3, warp), 3), alpha=ALPHA)
    assert res.passed, res
    assert np.asarray(out.accepted).max() >= 1


@pytest.mark.parametrize("verifier", [TOKEN, "single"], ids=["token", "single"])
def test_prompt_lookup_law_matches_target_chi_square(verifier):
    warp = (1.0, None, 0.9)
    samples, _ = _sample(verifier, warp, draft=prompt_lookup, prompt=(0, 1, 2, 0, 1), seed=5)
    res = chi_square_test(samples, law_vector(warped_sequence_law(TP, (0, 1, 2, 0, 1), 3, warp), 3),
                          alpha=ALPHA)
    assert res.passed, res


def test_mismatched_warp_bug_is_detected(monkeypatch):
    """The production bug: drafts drawn from the warped draft law, verified against unwarped laws.
    Patching the verifier's laws (the one function every step scores the target with) to skip the
    warp makes the chi-square test reject; unpatched, the same keys pass."""
    warp = (0.5, 2, None)
    law = law_vector(warped_sequence_law(TP, (0,), 3, warp), 3)
    assert chi_square_test(_sample(TOKEN, warp, seed=1)[0], law, alpha=ALPHA).passed
    monkeypatch.setattr(_laws, "verify_probs", lambda logits, t, k, p: jax.nn.softmax(logits, axis=-1))
    res = chi_square_test(_sample(TOKEN, warp, seed=1)[0], law, alpha=ALPHA)
    assert not res.passed and res.p_value < 1e-6, res


def test_identical_draft_accepts_everything():
    """q == p: token verification accepts every draft with probability one."""
    lm = TableCausalLM(TP)
    out = spectheory.generate(jax.random.key(3), lm, TableCausalLM(TP), [[0], [1, 2]], gamma=3,
                              max_new_tokens=9)
    acc = np.asarray(out.accepted)
    np.testing.assert_array_equal(acc, np.full((3, 2), 3))
    assert out.target_calls == 3 and out.draft_calls == 9


def test_eos_and_ragged_lengths():
    """Rows stop after EOS (kept), others run to max_new_tokens; greedy on tables is exact."""
    V = 3
    tp = TableLM(V, lambda c: [0.1, 0.2, 0.7] if len(c) < 4 else [0.6, 0.3, 0.1])
    for verifier in (TOKEN, BLOCK, "specinfer"):
        out = spectheory.generate(jax.random.key(0), TableCausalLM(tp), TableCausalLM(TQ), [[0], [1, 1, 1, 1]],
                                  verifier=verifier, gamma=2, max_new_tokens=6, temperature=0.0, eos_token_id=0)
        # row 0: argmax is 2 until the context has 4 tokens, then 0 (= EOS): 2, 2, 2, 0
        np.testing.assert_array_equal(np.asarray(out.tokens), [[2, 2, 2, 0, -1, -1], [0, -1, -1, -1, -1, -1]])
        np.testing.assert_array_equal(np.asarray(out.lengths), [4, 1])


def test_validation():
    p, q = TableCausalLM(TP), TableCausalLM(TQ)
    k = jax.random.key(0)
    gen = spectheory.generate
    with pytest.raises(ValueError, match="verifier"):
        gen(k, p, q, [[0]], verifier="nope", max_new_tokens=2)
    with pytest.raises(ValueError, match="verifier"):  # a string always names a rule
        gen(k, p, q, [[0]], verifier="token", max_new_tokens=2)
    with pytest.raises(ValueError, match="verifier"):
        gen(k, p, q, [[0]], verifier=3, max_new_tokens=2)
    with pytest.raises(ValueError, match="verifier"):  # host-only
        gen(k, p, q, [[0]], verifier="optimal", max_new_tokens=2)
    with pytest.raises(ValueError, match="verifier"):  # hub drafts: no tree child sampler
        gen(k, p, q, [[0]], verifier="spechub", max_new_tokens=2)
    with pytest.raises(ValueError, match="verifier"):  # lookup drafts are i.i.d. point masses
        gen(k, p, prompt_lookup, [[0]], verifier="rsd", max_new_tokens=2)
    with pytest.raises(ValueError, match="gamma"):
        gen(k, p, q, [[0]], gamma=0, max_new_tokens=2)
    with pytest.raises(ValueError, match="max_new_tokens"):
        gen(k, p, q, [[0]], max_new_tokens=0)
    with pytest.raises(ValueError, match="prompts"):
        gen(k, p, q, [[0], []], max_new_tokens=2)
    with pytest.raises(ValueError, match="prompts"):
        gen(k, p, q, [[0, 5]], max_new_tokens=2)
    with pytest.raises(ValueError, match="draft"):
        gen(k, p, TableCausalLM(TableLM.random(4, 2)), [[0]], max_new_tokens=2)
    with pytest.raises(ValueError, match="draft"):
        gen(k, p, 3, [[0]], max_new_tokens=2)
    with pytest.raises(ValueError, match="target"):
        gen(k, "p", q, [[0]], max_new_tokens=2)
    with pytest.raises(ValueError, match="top_p"):
        gen(k, p, q, [[0]], max_new_tokens=2, top_p=0.0)
    with pytest.raises(ValueError, match="eos_token_id"):
        gen(k, p, q, [[0]], max_new_tokens=2, eos_token_id=3)
    with pytest.raises(ValueError, match="branching"):  # a chain verifier takes no branching
        gen(k, p, q, [[0]], max_new_tokens=2, branching=(1, 1))
    with pytest.raises(ValueError, match="branching"):
        gen(k, p, q, [[0]], verifier="specinfer", max_new_tokens=2, branching=(2, 0))
    with pytest.raises(ValueError, match="branching"):  # "single" takes one draft per node
        gen(k, p, q, [[0]], verifier="single", max_new_tokens=2, branching=(2, 1))
    with pytest.raises(ValueError, match="branching"):
        gen(k, p, chain_proposer(q, 2), [[0]], max_new_tokens=2, branching=(1, 1))
    with pytest.raises(ValueError, match="key"):
        gen(None, p, q, [[0]], max_new_tokens=2)


BAD_GENERATE_INPUTS = [
    ("key", dict(key=3)), ("key", dict(key=np.zeros(3))), ("key", dict(key=jax.random.split(jax.random.key(0)))),
    ("gamma", dict(gamma=2.0)), ("gamma", dict(gamma=True)), ("gamma", dict(gamma=-1)),
    ("max_new_tokens", dict(max_new_tokens=2.5)), ("max_new_tokens", dict(max_new_tokens=True)),
    ("max_new_tokens", dict(max_new_tokens=None)),
    ("temperature", dict(temperature="hot")), ("temperature", dict(temperature=True)),
    ("temperature", dict(temperature=[1.0])), ("temperature", dict(temperature=float("nan"))),
    ("temperature", dict(temperature=-0.5)), ("top_k", dict(top_k=0)), ("top_k", dict(top_k=1.5)),
    ("top_p", dict(top_p="x")), ("top_p", dict(top_p=True)), ("top_p", dict(top_p=1.5)),
    ("top_p", dict(top_p=float("nan"))),
    ("eos_token_id", dict(eos_token_id=-1)), ("eos_token_id", dict(eos_token_id=1.0)),
    ("prompts", dict(prompts="abc")), ("prompts", dict(prompts=[[0.5]])), ("prompts", dict(prompts=[])),
    ("prompts", dict(prompts=[[[0]]])), ("prompts", dict(prompts=[[-1]])), ("prompts", dict(prompts=[["a"]])),
    ("prompts", dict(prompts=np.zeros((2, 0), np.int32))), ("prompts", dict(prompts=[[True]])),
    ("branching", dict(verifier="specinfer", branching=True)),
    ("branching", dict(verifier="specinfer", branching="ab")),
    ("branching", dict(verifier="specinfer", branching=0)),
    ("target", dict(target=None)), ("draft", dict(draft=None)),
    ("verifier", dict(verifier=spectheory.Rule("malformed", spectheory.drafts.IID, None))),
    ("verifier", dict(verifier=spectheory.testing.naive_independent_rule)),
    ("verifier", dict(verifier=spectheory.Rule("iid-rsd", spectheory.drafts.IID, spectheory.verify.RSD))),
]


@pytest.mark.parametrize("arg,bad", BAD_GENERATE_INPUTS,
                         ids=[f"{a}-{i}" for i, (a, _) in enumerate(BAD_GENERATE_INPUTS)])
def test_bad_input_is_refused_naming_the_argument(arg, bad):
    """Every argument of generate is checked eagerly: ValueError whose message starts with its name."""
    call = dict(key=jax.random.key(0), target=TableCausalLM(TP), draft=TableCausalLM(TQ), prompts=[[0]],
                max_new_tokens=2)
    call.update(bad)
    key, target, draft, prompts = (call.pop(k) for k in ("key", "target", "draft", "prompts"))
    with pytest.raises(ValueError, match=f"^{arg}"):
        spectheory.generate(key, target, draft, prompts, **call)


def test_bad_model_vocab_size_is_refused():
    class Broken(TableCausalLM):
        @property
        def vocab_size(self):
            return 0

    with pytest.raises(ValueError, match="^target: vocab_size"):
        spectheory.generate(jax.random.key(0), Broken(TP), TableCausalLM(TQ), [[0]], max_new_tokens=2)


# -- greedy speculative == greedy autoregressive on the real models -------------------------------

PROMPTS = ["import os\n", "def __init__(self", "    return sel", "class Foo:\n    def"]


@functools.lru_cache(maxsize=1)
def _shipped():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from spectheory.models import load_shipped_models

    return load_shipped_models()


def _torch_greedy(model, prompt, n):
    import torch

    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ids])).logits[0, -1]
            ids.append(int(torch.argmax(logits)))
    return ids[len(prompt):]


#: (proposer kind, verifier, tree branching): every proposer with every verifier it pairs with.
GREEDY_CASES = [("chain", TOKEN, None), ("chain", BLOCK, None), ("chain", "single", None),
                ("tree", "single", (1, 1, 1, 1)), ("tree", "specinfer", (2, 1, 1, 1)), ("tree", "rsd", (2, 2, 1)),
                ("tree", "spectr", (3, 1, 1)), ("tree", "greedy", (2, 2, 1)),
                ("lookup", TOKEN, None), ("lookup", BLOCK, None), ("lookup", "single", None)]


def _greedy_proposer(kind, draft_lm, verifier, branching, gamma=4):
    if kind == "chain":
        return chain_proposer(draft_lm, gamma)
    if kind == "tree":
        return tree_proposer(draft_lm, spectheory.rule(verifier).drafts, branching)
    return lookup_proposer(prompt_lookup, gamma)


@pytest.mark.parametrize("kind,verifier,branching", GREEDY_CASES,
                         ids=[f"{k}-{_name(v)}" for k, v, _ in GREEDY_CASES])
def test_greedy_equals_autoregressive_hf(kind, verifier, branching):
    from spectheory.models import HFCausalLM, encode_bytes

    tm, dm = _shipped()
    prompts = [encode_bytes(s) for s in PROMPTS]
    n = 20
    prop = _greedy_proposer(kind, HFCausalLM(dm), verifier, branching)
    out = spectheory.generate(jax.random.key(0), HFCausalLM(tm), prop, prompts, verifier=verifier,
                              max_new_tokens=n, temperature=0.0)
    want = [_torch_greedy(tm, p.tolist(), n) for p in prompts]
    np.testing.assert_array_equal(np.asarray(out.tokens), np.array(want))
    acc = np.asarray(out.accepted)
    steps = acc[acc >= 0]
    assert steps.max() > 0, "no draft was ever accepted"
    assert len(np.unique(steps)) > 1, "the number of accepted drafts never varied"


JAX_CASES = [("chain", TOKEN, None), ("tree", "specinfer", (2, 1, 1)), ("lookup", BLOCK, None)]


@functools.lru_cache(maxsize=1)
def _jax_shipped():
    from spectheory.models import JaxCausalLM, gpt_from_pretrained, gpt_logits, shipped_model_path

    lms, fns = [], []
    for name in ("target", "draft"):
        cfg, params = gpt_from_pretrained(shipped_model_path(name))
        fn = functools.partial(gpt_logits, config=cfg)
        lms.append(JaxCausalLM(fn, params, vocab_size=cfg.vocab_size))
        fns.append((fn, params))
    return lms, fns


@functools.lru_cache(maxsize=None)
def _jax_greedy_reference(n):
    """Greedy autoregressive decoding by full recompute on a fixed-size buffer (causal, so the
    zero tail is never read)."""
    from spectheory.models import encode_bytes

    _, fns = _jax_shipped()
    fn, params = fns[0]
    full = jax.jit(lambda buf: fn(params, buf))
    want = []
    for p in [encode_bytes(s) for s in PROMPTS[:3]]:
        ids = list(p)
        for _ in range(n):
            buf = np.zeros((1, 48), np.int32)
            buf[0, :len(ids)] = ids
            ids.append(int(jnp.argmax(full(buf)[0, len(ids) - 1])))
        want.append(ids[len(p):])
    return np.array(want)


@pytest.mark.parametrize("kind,verifier,branching", JAX_CASES, ids=[f"{k}-{_name(v)}" for k, v, _ in JAX_CASES])
def test_greedy_equals_autoregressive_jax_gpt(kind, verifier, branching):
    from spectheory.models import encode_bytes

    lms, _ = _jax_shipped()
    prompts = [encode_bytes(s) for s in PROMPTS[:3]]
    n = 12
    prop = _greedy_proposer(kind, lms[1], verifier, branching, gamma=3)
    out = spectheory.generate(jax.random.key(1), lms[0], prop, prompts, verifier=verifier, max_new_tokens=n,
                              temperature=0.0)
    np.testing.assert_array_equal(np.asarray(out.tokens), _jax_greedy_reference(n))
    assert np.asarray(out.accepted).max() > 0


# -- mean accepted length on the shipped models ---------------------------------------------------


def _step_starts(accepted_row, prompt_len):
    """Context lengths at the start of every step of one row (each step emits k + 1 tokens)."""
    starts, L = [], prompt_len
    for k in accepted_row:
        if k < 0:
            break
        starts.append(L)
        L += int(k) + 1
    return starts


def test_mean_accepted_matches_measured_acceptance_gamma1():
    r"""With one draft per step, :math:`E[k \mid c] = \beta(c) = \sum_x \min(\tilde p(x \mid c),
    \tilde q(x \mid c))` exactly, so :math:`\sum_t (k_t - \beta(c_t))` is a martingale: the mean of
    :math:`k_t - \beta(c_t)` over steps is 0 within its standard error. :math:`\beta` is measured
    by separate full forward passes of both torch models over the generated text."""
    import torch

    from spectheory.models import HFCausalLM, encode_bytes

    tm, dm = _shipped()
    prompts = [encode_bytes(s) for s in PROMPTS] * 2
    out = spectheory.generate(jax.random.key(7), HFCausalLM(tm), HFCausalLM(dm), prompts, gamma=1,
                              max_new_tokens=60)
    acc = np.asarray(out.accepted)
    diffs = []
    for b, p in enumerate(prompts):
        seq = p.tolist() + np.asarray(out.tokens[b, :int(out.lengths[b])]).tolist()
        with torch.no_grad():
            lp = torch.softmax(tm(torch.tensor([seq])).logits[0].double(), -1)
            lq = torch.softmax(dm(torch.tensor([seq])).logits[0].double(), -1)
        beta = torch.minimum(lp, lq).sum(-1).numpy()
        for t, c in enumerate(_step_starts(acc[:, b], len(p))):
            diffs.append(acc[t, b] - beta[c - 1])
    diffs = np.array(diffs)
    se = diffs.std(ddof=1) / np.sqrt(len(diffs))
    assert len(diffs) > 200
    np.testing.assert_allclose(diffs.mean(), 0.0, atol=4 * se)


@pytest.mark.slow
def test_mean_accepted_gamma4_iid_prediction():
    r"""Leviathan et al.'s prediction :math:`E[k] = \sum_{i=1}^{\gamma} \bar\alpha^i` from the mean
    per-position acceptance :math:`\bar\alpha` (an i.i.d. approximation, so a 10 % tolerance on
    top of 4 standard errors)."""
    import torch

    from spectheory.models import HFCausalLM, encode_bytes

    tm, dm = _shipped()
    prompts = [encode_bytes(s) for s in PROMPTS] * 2
    g = 4
    out = spectheory.generate(jax.random.key(8), HFCausalLM(tm), HFCausalLM(dm), prompts, gamma=g,
                              max_new_tokens=120)
    acc = np.asarray(out.accepted)
    ks = acc[acc >= 0]
    betas = []
    for b, p in enumerate(prompts):
        seq = p.tolist() + np.asarray(out.tokens[b, :int(out.lengths[b])]).tolist()
        with torch.no_grad():
            lp = torch.softmax(tm(torch.tensor([seq])).logits[0].double(), -1)
            lq = torch.softmax(dm(torch.tensor([seq])).logits[0].double(), -1)
        betas.extend(torch.minimum(lp, lq).sum(-1).numpy()[len(p) - 1:-1].tolist())
    a = float(np.mean(betas))
    pred = sum(a ** i for i in range(1, g + 1))
    se = ks.std(ddof=1) / np.sqrt(len(ks))
    np.testing.assert_allclose(ks.mean(), pred, atol=4 * se + 0.1 * pred)
