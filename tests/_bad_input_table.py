"""The bad-input table of tests/test_bad_input.py: every public function of spectheory with a
legal call and the bad inputs it must refuse.

An :class:`Entry` holds a legal call (``good``: keyword arguments by parameter name, built
fresh for every example), a list of :class:`Case` (one argument replaced by a hypothesis
strategy of bad values), the arguments traced under ``jit``/``vmap`` (``traced``; empty for
host-side functions, which are run eagerly only) and, for token outputs, how to read the ids
and the vocabulary size they must lie in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

import spectheory
from spectheory import audit, bounds, decode, drafts, models, parallel, sampling, testing, trees, verify

V = 4
P = np.array([0.4, 0.3, 0.2, 0.1])
Q = np.array([0.1, 0.2, 0.3, 0.4])
LOGITS = np.log(P)


# --- strategies of bad values ------------------------------------------------------------------

def _pos(x):
    return st.integers(0, int(np.size(x)) - 1)


def nan_in(x):
    """``x`` with one entry NaN."""
    x = np.asarray(x, np.float64)
    return _pos(x).map(lambda i: np.where(np.arange(x.size).reshape(x.shape) == i, np.nan, x))


def inf_in(x, sign=1):
    x = np.asarray(x, np.float64)
    return _pos(x).map(lambda i: np.where(np.arange(x.size).reshape(x.shape) == i, sign * np.inf, x))


def negative_law(x):
    """A law of the same sum with one entry pushed below zero (mass moved to another)."""
    x = np.asarray(x, np.float64)

    def make(args):
        i, d = args
        y = x.copy().reshape(-1, x.shape[-1])
        V_ = x.shape[-1]
        y[:, i % V_] -= d
        y[:, (i + 1) % V_] += d
        return y.reshape(x.shape)

    return st.tuples(_pos(x), st.floats(0.6, 2.0)).map(make)


def unnormalised(x):
    x = np.asarray(x, np.float64)
    return st.one_of(st.floats(1.1, 3.0), st.floats(0.2, 0.9)).map(lambda c: x * c)


def zero_law(x):
    return st.just(np.zeros_like(np.asarray(x, np.float64)))


def wrong_vocab(x):
    """The same law over one more token (the other law keeps ``V``)."""
    x = np.asarray(x, np.float64)
    return st.just(np.concatenate([x, np.zeros(x.shape[:-1] + (1,))], -1))


def wrong_rank(x):
    x = np.asarray(x)
    return st.sampled_from([x[..., 0], np.stack([x, x, x], 0) if x.ndim >= 2 else x[None, None]])


def ids_out_of_range(x, V_=V):
    x = np.asarray(x, np.int64)
    return st.tuples(_pos(x), st.sampled_from([V_, V_ + 3, 100, -1, -2])).map(
        lambda a: np.where(np.arange(x.size).reshape(x.shape) == a[0], a[1], x))


def float_ids(x):
    x = np.asarray(x)
    return st.sampled_from([0.5, 0.0]).map(lambda d: x.astype(np.float64) + d)


def bad_int(lo=1, extra=(), none_ok=False):
    """Bad static ints: below ``lo``, negative, non-integer, bool, None (unless it means the
    default) and ``extra``."""
    vals = [lo - 1, -3, 1.5, True, "2"] + ([] if none_ok else [None]) + list(extra)
    return st.sampled_from(vals)


def bad_key(_):
    return st.sampled_from([None, 0, np.zeros(2, np.float32), np.zeros(3, np.uint32), "key"])


def nan_logits(x):
    return st.one_of(nan_in(x), inf_in(x, 1), st.just(np.full_like(np.asarray(x, np.float64), -np.inf)))


def bad_float(values=(np.nan, np.inf, -1.0)):
    return lambda _: st.sampled_from(list(values))


def cyclic_parents(_):
    return st.sampled_from([np.array([-1, 2, 1]), np.array([0, 0, 1]), np.array([-1, 5, 0]),
                            np.array([-1, -3, 0]), np.array([-1, 0.5, 0])])


def not_a(kind):
    return lambda _: st.sampled_from([None, "nonsense", 3.5, object()]).map(lambda v: v)


# --- the table ---------------------------------------------------------------------------------

@dataclass
class Case:
    """One bad input: ``arg`` replaced by a value drawn from ``strategy(good value)`` (``arg``
    may be a tuple of argument names: the example draws which one is faulty).

    ``name`` is the case family (``nan``, ``inf``, ``negative``, ``unnormalised``, ``zero_law``,
    ``shape``, ``vocab``, ``id_range``, ``id_float``, ``n``, ``key``, ``count``, ``tree``,
    ``rule``, ``param``, ``type``); ``value`` cases keep the shape and dtype, so they run under
    ``jit`` and ``vmap`` too.
    """

    name: str
    arg: str
    strategy: Callable[[Any], Any]
    value: bool = False


@dataclass
class Entry:
    """A public function, a legal call and its bad inputs."""

    fn: Callable
    good: Callable[[], dict]
    cases: list
    traced: tuple = ()
    tokens: Optional[Callable] = None
    vocab: int = V
    out: Callable = field(default=lambda r: r)


def law_cases(*args, zero=True, batched=False):
    """One case per fault; the faulty law is drawn among ``args`` (``batched``: the function
    takes leading batch axes, so only a scalar is a wrong shape)."""
    a = args if len(args) > 1 else args[0]
    shape = (lambda x: st.just(np.asarray(x)[..., 0])) if batched else wrong_rank
    out = [Case("nan", a, nan_in, True), Case("inf", a, inf_in, True), Case("negative", a, negative_law, True),
           Case("unnormalised", a, unnormalised, True), Case("shape", a, shape)]
    if zero:
        out.append(Case("zero_law", a, zero_law, True))
    if len(args) > 1:
        out.append(Case("vocab", args[-1], wrong_vocab))
    return out


def id_cases(arg, V_=V):
    return [Case("id_range", arg, lambda x: ids_out_of_range(x, V_), True), Case("id_float", arg, float_ids)]


def n_cases(arg="n", extra=()):
    return [Case("n", arg, lambda _: bad_int(1, extra))]


def key_case(arg="key"):
    return [Case("key", arg, bad_key)]


def count_case(arg, lo=1, none_ok=False):
    return [Case("count", arg, lambda _: bad_int(lo, none_ok=none_ok))]


KEY = jax.random.key(0)


def _tree2():
    return trees.tree_from_parents([1, 2], [-1, -1], "iid")


def _target_lm():
    return models.TableLM.random(V, 3, seed=1)


def _draft_lm():
    return models.TableLM.random(V, 3, seed=2)


def _causal(lm=None):
    return models.TableCausalLM(lm or _target_lm())


def _tree_laws():
    return np.stack([P, P, P]), np.stack([Q, Q, Q])


SINGLE_RULE = spectheory.rule("single")
RULE_CASES = [Case("rule", "rule", lambda _: st.sampled_from(["nonsense", None, 3]))]
_PQN = lambda n=2: dict(p=P, q=Q, n=n)  # noqa: E731
_CHAIN = lambda: dict(p=np.stack([P, P, P]), q=np.stack([Q, Q]), drafts=np.array([1, 2]))  # noqa: E731


def _verifier_entry(v, n=2, drafts_=(1, 2)):
    return Entry(v.verify, lambda: dict(key=KEY, p=P, q=Q, drafts=np.array(drafts_[:n])),
                 law_cases("p", "q") + id_cases("drafts") + key_case(), traced=("p", "q", "drafts"),
                 tokens=lambda r: r.token)


def _chain_entry(fn, with_key=True, uniforms=False):
    def good():
        d = _CHAIN()
        if with_key:
            d["key"] = KEY
        if uniforms:
            d["uniforms"] = np.full(3, 0.4)
        return d

    cases = law_cases("p", "q") + id_cases("drafts")
    cases += key_case() if with_key else []
    if uniforms:
        cases.append(Case("param", "uniforms", lambda u: st.sampled_from([u * np.nan, u + 1.0, -u]), True))
    tok = (lambda r: r.tokens) if (with_key or uniforms) else None
    return Entry(fn, good, cases, traced=("p", "q", "drafts") + (("uniforms",) if uniforms else ()), tokens=tok)


def _logit_chain_entry(fn, uniforms=False):
    def good():
        d = dict(target_logits=np.log(np.stack([P, P, P])), draft_logits=np.log(np.stack([Q, Q])),
                 drafts=np.array([1, 2]), temperature=1.0)
        d["uniforms" if uniforms else "key"] = np.full(3, 0.4) if uniforms else KEY
        return d

    cases = [Case("nan", "target_logits", nan_logits, True), Case("nan", "draft_logits", nan_logits, True),
             Case("param", "temperature", bad_float((np.nan, -1.0, np.inf))),
             Case("shape", "draft_logits", wrong_rank)] + id_cases("drafts")
    cases += [] if uniforms else key_case()
    traced = ("target_logits", "draft_logits", "drafts") + (("uniforms",) if uniforms else ())
    return Entry(fn, good, cases, traced=traced, tokens=lambda r: r.tokens)


def _scheme_sample_entry(s, n=2):
    return Entry(s.sample, lambda: dict(key=KEY, q=Q, n=n),
                 law_cases("q") + n_cases() + key_case() + [Case("shape", "q", lambda x: st.just(np.stack([x, x])))],
                 traced=("q",), tokens=lambda r: r)


def _children_entry(fn):
    return Entry(fn, lambda: dict(key=KEY, logq=jnp.asarray(LOGITS), b=2),
                 [Case("nan", "logq", nan_logits, True), Case("shape", "logq", wrong_rank)] + n_cases("b") + key_case(),
                 traced=("logq",), tokens=lambda r: r[0])


def _law_entry(fn, n=2):
    return Entry(fn, lambda: dict(q=Q, n=n), law_cases("q") + n_cases())


def _acceptance_entry(fn, n=2):
    return Entry(fn, lambda: _PQN(n), law_cases("p", "q", batched=True) + n_cases(), traced=("p", "q"))


def _table() -> dict:
    T = {}
    # --- spectheory (registry) ------------------------------------------------------------------
    T["spectheory.make_verifier"] = Entry(
        spectheory.make_verifier, lambda: dict(core=verify.SINGLE.verify_with_uniforms, kernel=verify.SINGLE.kernel,
                                               num_uniforms=lambda n: 2),
        [Case("type", "core", not_a("callable")), Case("type", "kernel", not_a("callable")),
         Case("type", "num_uniforms", not_a("callable"))])
    T["spectheory.checked"] = Entry(spectheory.checked, lambda: dict(fn=verify.chain),
                                    [Case("type", "fn", not_a("callable"))])
    T["spectheory.checkify"] = Entry(spectheory.checkify, lambda: dict(fn=verify.chain),
                                     [Case("type", "fn", not_a("callable"))])
    T["spectheory.register"] = Entry(spectheory.register, lambda: dict(new=None),
                                     [Case("rule", "new", lambda _: st.sampled_from(["single", 3, None, object()]))])
    T["spectheory.rule"] = Entry(spectheory.rule, lambda: dict(name="single"),
                                 [Case("rule", "name", lambda _: st.sampled_from(["nonsense", 3, None]))])
    T["spectheory.generate"] = Entry(
        spectheory.generate,
        lambda: dict(key=KEY, target=_causal(), draft=_causal(_draft_lm()), prompts=[[1, 2]], max_new_tokens=3),
        key_case() + count_case("max_new_tokens") + count_case("gamma")
        + [Case("id_range", "prompts", lambda _: st.sampled_from([[[1, V]], [[-1, 2]]])),
           Case("id_float", "prompts", lambda _: st.just([[1.5, 2.0]])),
           Case("param", "temperature", bad_float((np.nan, -1.0, np.inf))),
           Case("param", "top_p", bad_float((0.0, 1.5, np.nan))),
           Case("param", "top_k", lambda _: st.sampled_from([0, -1, 1.5])),
           Case("rule", "verifier", lambda _: st.sampled_from(["nonsense", 3])),
           Case("type", "target", not_a("model"))])
    # --- drafts ---------------------------------------------------------------------------------
    for name, s in [("IID", drafts.IID), ("WITHOUT_REPLACEMENT", drafts.WITHOUT_REPLACEMENT),
                    ("GREEDY", drafts.GREEDY), ("HUB", drafts.HUB)]:
        T[f"spectheory.drafts.{name}"] = _scheme_sample_entry(s)
    for f in ("iid", "without_replacement", "greedy"):
        T[f"spectheory.drafts.{f}_children"] = _children_entry(getattr(drafts, f"{f}_children"))
        T[f"spectheory.drafts.{f}_law"] = _law_entry(getattr(drafts, f"{f}_law"))
        T[f"spectheory.drafts.{f}_sample"] = Entry(getattr(drafts, f"{f}_sample"), lambda: dict(key=KEY, q=Q, n=2),
                                                   _scheme_sample_entry(drafts.IID).cases, traced=("q",),
                                                   tokens=lambda r: r)
    T["spectheory.drafts.greedy_top"] = Entry(drafts.greedy_top, lambda: dict(q=Q, n=2), law_cases("q") + n_cases(),
                                              traced=("q",), tokens=lambda r: r)
    T["spectheory.drafts.hub_law"] = _law_entry(drafts.hub_law)
    T["spectheory.drafts.hub_sample"] = Entry(drafts.hub_sample, lambda: dict(key=KEY, q=Q, n=2),
                                              _scheme_sample_entry(drafts.IID).cases, traced=("q",), tokens=lambda r: r)
    T["spectheory.drafts.scheme"] = Entry(drafts.scheme, lambda: dict(name="iid"),
                                          [Case("rule", "name", lambda _: st.sampled_from(["nonsense", 3, None]))])
    # --- verify ---------------------------------------------------------------------------------
    T["spectheory.verify.warp_logits"] = Entry(
        verify.warp_logits, lambda: dict(logits=LOGITS, temperature=1.0),
        [Case("nan", "logits", nan_logits, True), Case("param", "temperature", bad_float((np.nan, -1.0, np.inf))),
         Case("param", "top_k", lambda _: st.sampled_from([0, -1, 1.5])),
         Case("param", "top_p", lambda _: st.sampled_from([0.0, 1.5, np.nan]))],
        traced=("logits",))
    for name, n in [("SINGLE", 1), ("SPECINFER", 2), ("RSD", 2), ("SPECTR", 2), ("GREEDY_OPTIMAL", 2),
                    ("SPECHUB", 2), ("OPTIMAL", 2)]:
        d = (3, 1) if name in ("GREEDY_OPTIMAL", "SPECHUB") else (1, 2)
        T[f"spectheory.verify.{name}"] = _verifier_entry(getattr(verify, name), n, d)
    for f, n in [("single_acceptance", 1), ("specinfer_acceptance", 2), ("specinfer_targets", 2),
                 ("specinfer_thresholds", 2), ("spectr_acceptance", 2), ("spectr_rho", 2),
                 ("greedy_acceptance", 2), ("spechub_acceptance", 2)]:
        T[f"spectheory.verify.{f}"] = _acceptance_entry(getattr(verify, f), n)
    T["spectheory.verify.rsd_laws"] = Entry(verify.rsd_laws, lambda: dict(p=P, q=Q, drafts=np.array([1, 2])),
                                            law_cases("p", "q") + id_cases("drafts"), traced=("p", "q", "drafts"))
    T["spectheory.verify.spectr_residual"] = Entry(
        verify.spectr_residual, lambda: dict(p=P, q=Q, rho=1.2),
        law_cases("p", "q") + [Case("param", "rho", bad_float((np.nan, 0.5, -1.0, np.inf)))], traced=("p", "q"))
    T["spectheory.verify.optimal_verifier"] = Entry(
        verify.optimal_verifier, lambda: dict(scheme="iid"),
        [Case("rule", "scheme", lambda _: st.sampled_from(["nonsense", 3, None]))])
    T["spectheory.verify.chain"] = _chain_entry(verify.chain)
    T["spectheory.verify.chain_with_uniforms"] = _chain_entry(verify.chain_with_uniforms, False, True)
    T["spectheory.verify.chain_kernel"] = _chain_entry(verify.chain_kernel, False)
    T["spectheory.verify.chain_from_logits"] = _logit_chain_entry(verify.chain_from_logits)
    T["spectheory.verify.chain_from_logits_with_uniforms"] = _logit_chain_entry(
        verify.chain_from_logits_with_uniforms, True)
    T["spectheory.verify.block"] = _chain_entry(verify.block)
    T["spectheory.verify.block_with_uniforms"] = _chain_entry(verify.block_with_uniforms, False, True)
    T["spectheory.verify.block_kernel"] = _chain_entry(verify.block_kernel, False)
    T["spectheory.verify.block_quantities"] = _chain_entry(verify.block_quantities, False)
    # --- audit ----------------------------------------------------------------------------------
    rule_pqn = lambda: dict(rule=SINGLE_RULE, p=P, q=Q, n=1)  # noqa: E731
    T["spectheory.audit.acceptance"] = Entry(audit.acceptance, rule_pqn, law_cases("p", "q") + n_cases() + RULE_CASES)
    T["spectheory.audit.exact"] = Entry(audit.exact, rule_pqn, law_cases("p", "q") + n_cases() + RULE_CASES)
    T["spectheory.audit.kernel_table"] = Entry(
        audit.kernel_table, lambda: dict(kernel=verify.SINGLE.kernel, p=P, q=Q, tuples=np.array([[0], [1], [2], [3]])),
        law_cases("p", "q") + id_cases("tuples") + [Case("type", "kernel", not_a("callable"))])
    T["spectheory.audit.exact_chain"] = Entry(
        audit.exact_chain, lambda: dict(target=_target_lm(), draft=_draft_lm(), gamma=2),
        count_case("gamma", lo=0) + [Case("type", "target", not_a("TableLM")), Case("type", "draft", not_a("TableLM"))])
    T["spectheory.audit.sequence_error"] = Entry(
        audit.sequence_error, lambda: dict(target=_target_lm(), emitted={(0,): 0.5, (1,): 0.5}, length=1),
        count_case("length") + [Case("type", "target", not_a("TableLM")),
                                Case("nan", "emitted", lambda _: st.just({(0,): np.nan, (1,): 0.5})),
                                Case("id_range", "emitted", lambda _: st.just({(V,): 1.0}))])
    T["spectheory.audit.exact_tree"] = Entry(
        audit.exact_tree, lambda: dict(target=_target_lm(), draft=_draft_lm(), node_rule="specinfer", branching=(2,)),
        [Case("tree", "branching", lambda _: st.sampled_from([(), (0,), (2, -1), (1.5,), None])),
         Case("rule", "node_rule", lambda _: st.sampled_from(["nonsense", 3])),
         Case("type", "target", not_a("TableLM"))])
    T["spectheory.audit.chi_square"] = Entry(
        audit.chi_square, lambda: dict(rule=SINGLE_RULE, p=P, q=Q, n=1, key=KEY, num_samples=200),
        law_cases("p", "q") + n_cases() + key_case() + count_case("num_samples") + RULE_CASES)
    T["spectheory.audit.chi_square_test"] = Entry(
        audit.chi_square_test, lambda: dict(samples=np.tile([0, 1, 1, 2, 3, 0, 1, 2], 50), probs=P),
        law_cases("probs") + id_cases("samples") + [Case("param", "alpha", bad_float((np.nan, 0.0, 1.0, -0.5)))])
    T["spectheory.audit.sample_tokens"] = Entry(
        audit.sample_tokens, lambda: dict(rule=SINGLE_RULE, p=P, q=Q, n=1, key=KEY, num_samples=50),
        law_cases("p", "q") + n_cases() + key_case() + count_case("num_samples") + RULE_CASES)
    # --- models ---------------------------------------------------------------------------------
    T["spectheory.models.TableLM"] = Entry(
        models.TableLM, lambda: dict(vocab_size=V, table={(): P}),
        count_case("vocab_size") + [Case("nan", "table", lambda _: nan_in(P).map(lambda x: {(): x})),
                                    Case("unnormalised", "table", lambda _: unnormalised(P).map(lambda x: {(): x})),
                                    Case("negative", "table", lambda _: negative_law(P).map(lambda x: {(): x})),
                                    Case("vocab", "table", lambda _: st.just({(): np.ones(V + 1) / (V + 1)})),
                                    Case("id_range", "table", lambda _: st.just({(): P, (V,): P}))])
    T["spectheory.models.TableCausalLM"] = Entry(models.TableCausalLM, lambda: dict(table=_target_lm()),
                                                 [Case("type", "table", not_a("TableLM"))] + count_case("max_len", none_ok=True))
    T["spectheory.models.chain_parents"] = Entry(models.chain_parents, lambda: dict(T=3), count_case("T"))
    for f in ("tree_ancestors", "tree_depths", "tree_paths"):
        T[f"spectheory.models.{f}"] = Entry(getattr(models, f), lambda: dict(parents=np.array([-1, 0, 0])),
                                            [Case("tree", "parents", cyclic_parents)])
    T["spectheory.models.torch_to_jax"] = Entry(models.torch_to_jax, lambda: dict(t=None),
                                                [Case("type", "t", lambda _: st.sampled_from(["x", None, object()]))])
    cfg = lambda: models.GPTConfig(vocab_size=V, n_positions=8, n_embd=8, n_layer=1, n_head=2)  # noqa: E731
    T["spectheory.models.gpt_init"] = Entry(models.gpt_init, lambda: dict(key=KEY, config=cfg()),
                                            key_case() + [Case("type", "config", not_a("GPTConfig"))])
    T["spectheory.models.gpt_logits"] = Entry(
        models.gpt_logits, lambda: dict(params=models.gpt_init(KEY, cfg()), tokens=np.array([[1, 2]]), config=cfg()),
        id_cases("tokens") + [Case("shape", "tokens", lambda _: st.just(np.zeros((1, 9), np.int32)))],
        traced=("tokens",))
    T["spectheory.models.gpt_from_pretrained"] = Entry(
        models.gpt_from_pretrained, lambda: dict(path=None),
        [Case("type", "path", lambda _: st.sampled_from(["/nonexistent/model", 3]))])
    T["spectheory.models.prompt_lookup"] = Entry(
        models.prompt_lookup, lambda: dict(context=np.array([1, 2, 1, 2, 3]), num_drafts=2),
        [Case("id_float", "context", float_ids), Case("id_range", "context", lambda x: st.just(x * 0 - 1))]
        + count_case("num_drafts") + count_case("max_ngram"), traced=("context",), tokens=lambda r: r.drafts)
    T["spectheory.models.point_mass"] = Entry(models.point_mass, lambda: dict(tokens=np.array([1, 2]), vocab_size=V),
                                              id_cases("tokens") + count_case("vocab_size"), traced=("tokens",))
    T["spectheory.models.shipped_model_path"] = Entry(
        models.shipped_model_path, lambda: dict(name=models.SHIPPED_MODELS[0]),
        [Case("type", "name", lambda _: st.sampled_from(["nonsense", 3, None]))])
    T["spectheory.models.encode_bytes"] = Entry(models.encode_bytes, lambda: dict(text="ab"),
                                                [Case("type", "text", lambda _: st.sampled_from([3, None, [1, 2]]))])
    T["spectheory.models.decode_bytes"] = Entry(models.decode_bytes, lambda: dict(tokens=np.array([97, 98])),
                                                id_cases("tokens", 257))
    # --- testing --------------------------------------------------------------------------------
    for f in ("prob_pairs", "prob_vectors"):
        T[f"spectheory.testing.{f}"] = Entry(getattr(testing, f), lambda: dict(min_size=1, max_size=4),
                                             count_case("min_size") + count_case("max_size")
                                             + [Case("count", "size", lambda _: bad_int(1, none_ok=True))])
    T["spectheory.testing.check_lossless"] = Entry(
        testing.check_lossless, lambda: dict(fn=verify.SINGLE.verify, p=P, q=Q, n=1, num_samples=200),
        law_cases("p", "q") + n_cases() + count_case("num_samples") + [Case("type", "fn", not_a("callable")),
                                                                       Case("param", "alpha", bad_float((np.nan, 0.0, 1.5)))])
    # --- bounds ---------------------------------------------------------------------------------
    nodes_case = [Case("count", "num_nodes", lambda _: bad_int(2, none_ok=True))]
    T["spectheory.bounds.optimal_acceptance"] = Entry(
        bounds.optimal_acceptance, lambda: dict(p=P, q=Q, n=2, scheme="without_replacement"),
        law_cases("p", "q", batched=True) + n_cases(extra=(V + 1,)) + nodes_case
        + [Case("rule", "scheme", lambda _: st.sampled_from(["nonsense", 3, None]))],
        traced=("p", "q"), out=lambda r: r.value)
    T["spectheory.bounds.all_in_probability"] = Entry(
        bounds.all_in_probability, lambda: dict(q=Q, H=np.array([True, True, False, False]), n=2,
                                                scheme="without_replacement"),
        law_cases("q", batched=True) + n_cases(extra=(V + 1,)) + nodes_case
        + [Case("shape", "H", lambda h: st.sampled_from([h[:2], h.astype(float)]))], traced=("q", "H"))
    dl = lambda: dict(p=P, tuples=np.array([[0, 1], [2, 3]]), probs=np.array([0.5, 0.5]))  # noqa: E731
    sub_cases = (law_cases("p", "probs") + id_cases("tuples")
                 + [Case("shape", "tuples", lambda t: st.sampled_from([t[0], np.zeros((0, 2), int)]))])
    T["spectheory.bounds.subset_bound"] = Entry(bounds.subset_bound, dl, sub_cases)
    T["spectheory.bounds.lp_acceptance"] = Entry(
        bounds.lp_acceptance, dl, sub_cases + [Case("param", "solver", lambda _: st.sampled_from(["simplex", 3])),
                                               Case("count", "num_iter_max", lambda _: bad_int(1))])
    T["spectheory.bounds.collapse_draft_sets"] = Entry(
        bounds.collapse_draft_sets, lambda: dict(tuples=np.array([[0, 1], [1, 0]]), V=V),
        id_cases("tuples") + count_case("V") + [Case("shape", "tuples", lambda t: st.just(t[0]))])
    alpha_cases = [Case("nan", "alpha", bad_float((np.nan,)), True), Case("inf", "alpha", bad_float((np.inf,)), True),
                   Case("param", "alpha", bad_float((-0.1, 1.5)), True)]
    gamma_cases = [Case("count", "gamma", lambda _: st.sampled_from([-1, 2.5, np.nan]), True)]
    cost_cases = [Case("param", "c", bad_float((np.nan, -0.5, np.inf)), True)]
    T["spectheory.bounds.expected_tokens_per_call"] = Entry(
        bounds.expected_tokens_per_call, lambda: dict(alpha=0.7, gamma=3.0), alpha_cases + gamma_cases,
        traced=("alpha", "gamma"))
    T["spectheory.bounds.walltime_improvement"] = Entry(
        bounds.walltime_improvement, lambda: dict(alpha=0.7, gamma=3.0, c=0.1), alpha_cases + gamma_cases + cost_cases,
        traced=("alpha", "gamma", "c"))
    T["spectheory.bounds.optimal_gamma"] = Entry(
        bounds.optimal_gamma, lambda: dict(alpha=0.7, c=0.1),
        alpha_cases + cost_cases + [Case("count", "max_gamma", lambda _: bad_int(0))], traced=("alpha", "c"))
    tree_ap = lambda: dict(parents=np.array([-1, 0, 0, 1]), accept_probs=np.array([1.0, 0.5, 0.25, 0.5]))  # noqa: E731
    ap_cases = [Case("tree", "parents", cyclic_parents), Case("nan", "accept_probs", nan_in, True),
                Case("param", "accept_probs", lambda a: st.sampled_from([a * 3, -a, a + 0.6]), True),
                Case("shape", "accept_probs", lambda a: st.just(a[:3]))]
    T["spectheory.bounds.tree_acceptance_probabilities"] = Entry(bounds.tree_acceptance_probabilities, tree_ap,
                                                                 ap_cases, traced=("accept_probs",))
    T["spectheory.bounds.tree_expected_length"] = Entry(bounds.tree_expected_length, tree_ap, ap_cases,
                                                        traced=("accept_probs",))
    ms_case = [Case("count", "ms", lambda _: st.sampled_from([0, V + 1, -1]), True),
               Case("id_float", "ms", lambda _: st.sampled_from([1.5, np.array([1.0, 2.0])]))]
    freq_case = [Case("nan", "frequency", lambda _: nan_in(np.ones(V)), True),
                 Case("negative", "frequency", lambda _: st.just(-np.ones(V)), True)]
    T["spectheory.bounds.trim_draft"] = Entry(
        bounds.trim_draft, lambda: dict(q=Q, m=2, frequency=np.arange(V, dtype=float)),
        law_cases("q", batched=True) + [Case("count", "m", lambda _: st.sampled_from([0, V + 1, -1]), True),
                          Case("id_float", "m", lambda _: st.sampled_from([1.5, True]))] + freq_case,
        traced=("q", "m", "frequency"))
    T["spectheory.bounds.trimmed_acceptance"] = Entry(
        bounds.trimmed_acceptance, lambda: dict(p=P, q=Q, ms=np.array([1, 3]), frequency=np.arange(V, dtype=float)),
        law_cases("p", "q", batched=True) + ms_case + freq_case, traced=("p", "q", "ms", "frequency"))
    T["spectheory.bounds.trimmed_optimal_acceptance"] = Entry(
        bounds.trimmed_optimal_acceptance,
        lambda: dict(p=P, q=Q, n=2, ms=np.array([2, 3]), scheme="without_replacement"),
        law_cases("p", "q", batched=True) + n_cases() + [Case("count", "ms", lambda _: st.sampled_from([0, 1, V + 1]), True)],
        traced=("p", "q", "ms"))
    # --- sampling -------------------------------------------------------------------------------
    lm_fn = lambda: sampling.table_log_probs_fn(models.TableLM.context_free(P), 2)  # noqa: E731
    T["spectheory.sampling.gumbel_top_k"] = Entry(
        sampling.gumbel_top_k, lambda: dict(key=KEY, logits=LOGITS, k=2),
        key_case() + [Case("nan", "logits", nan_logits, True),
                      Case("n", "k", lambda _: bad_int(1, (V + 1,))),
                      Case("zero_law", "logits", lambda _: st.just(np.array([0.0, -np.inf, -np.inf, -np.inf])), True)],
        traced=("logits",), tokens=lambda r: r)
    T["spectheory.sampling.gumbel_top_k_with_gumbels"] = Entry(
        sampling.gumbel_top_k_with_gumbels, lambda: dict(gumbels=np.zeros(V), logits=LOGITS, k=2),
        [Case("nan", "logits", nan_logits, True), Case("nan", "gumbels", nan_in, True),
         Case("shape", "gumbels", lambda g: st.just(g[:2])), Case("n", "k", lambda _: bad_int(1, (V + 1,))),
         Case("zero_law", "logits", lambda _: st.just(np.array([0.0, -np.inf, -np.inf, -np.inf])), True)],
        traced=("gumbels", "logits"), tokens=lambda r: r)
    T["spectheory.sampling.plackett_luce_log_prob"] = Entry(
        sampling.plackett_luce_log_prob, lambda: dict(logits=LOGITS, indices=np.array([1, 2])),
        [Case("nan", "logits", nan_logits, True), Case("id_range", "indices", ids_out_of_range, True),
         Case("id_float", "indices", float_ids),
         Case("param", "indices", lambda _: st.just(np.array([2, 2])), True)],
        traced=("logits", "indices"))
    T["spectheory.sampling.sequence_law"] = Entry(
        sampling.sequence_law, lambda: dict(model=_target_lm(), depth=2),
        [Case("type", "model", not_a("TableLM")), Case("count", "depth", lambda _: bad_int(0)),
         Case("id_range", "prefix", lambda _: st.sampled_from([(V,), (-1,)])),
         Case("id_float", "prefix", lambda _: st.just((0.5,)))])
    T["spectheory.sampling.table_log_probs_fn"] = Entry(
        sampling.table_log_probs_fn, lambda: dict(model=_target_lm(), depth=2),
        [Case("type", "model", not_a("TableLM")), Case("count", "depth", lambda _: bad_int(1)),
         Case("id_range", "prefix", lambda _: st.sampled_from([(V,), (-1,)]))])
    T["spectheory.sampling.stochastic_beam_search"] = Entry(
        sampling.stochastic_beam_search, lambda: dict(key=KEY, log_probs_fn=lm_fn(), beam_width=2, depth=2,
                                                      vocab_size=V),
        key_case() + count_case("beam_width") + count_case("depth") + count_case("vocab_size")
        + [Case("type", "log_probs_fn", not_a("callable"))])
    T["spectheory.sampling.stochastic_beam_search_with_gumbels"] = Entry(
        sampling.stochastic_beam_search_with_gumbels,
        lambda: dict(gumbels=np.zeros((2, 2, V)), log_probs_fn=lm_fn(), beam_width=2, depth=2),
        [Case("nan", "gumbels", nan_in, True), Case("shape", "gumbels", lambda g: st.just(g[0])),
         Case("type", "log_probs_fn", not_a("callable"))] + count_case("beam_width") + count_case("depth"),
        traced=("gumbels",), out=lambda r: r.perturbed)
    # --- trees ----------------------------------------------------------------------------------
    def _tree_cases():
        return [Case("type", "tree", lambda _: st.sampled_from([None, "tree", (1, 2)]))]

    T["spectheory.trees.tree_from_parents"] = Entry(
        trees.tree_from_parents, lambda: dict(token=[1, 2, 0], parent=[-1, 0, 0], scheme="iid"),
        [Case("tree", "parent", cyclic_parents), Case("id_float", "token", lambda _: st.just([1.5, 2.0, 0.0])),
         Case("id_range", "token", lambda _: st.just([-1, 2, 0])),
         Case("shape", "parent", lambda _: st.just([-1, 0])), Case("count", "max_children", lambda _: bad_int(1, none_ok=True)),
         Case("rule", "scheme", lambda _: st.sampled_from(["nonsense", 3]))])
    T["spectheory.trees.children_table"] = Entry(
        trees.children_table, lambda: dict(parent=np.array([-1, 0, 0]), valid=np.ones(3, bool), width=2),
        [Case("tree", "parent", cyclic_parents), Case("count", "width", lambda _: bad_int(1)),
         Case("shape", "valid", lambda v: st.sampled_from([v[:2], v.astype(float)]))])
    T["spectheory.trees.draft_tree"] = Entry(
        trees.draft_tree, lambda: dict(key=KEY, scheme="iid", log_probs_fn=lm_fn(), branching=(2, 1), vocab_size=V),
        key_case() + count_case("vocab_size")
        + [Case("tree", "branching", lambda _: st.sampled_from([(), (0,), (2, -1), (1.5,), None])),
           Case("rule", "scheme", lambda _: st.sampled_from(["nonsense", "hub", 3])),
           Case("type", "log_probs_fn", not_a("callable"))])
    T["spectheory.trees.grow_tree"] = Entry(
        trees.grow_tree, lambda: dict(key=KEY, scheme="iid", branching=(2,), root_logq=LOGITS[None], expand=None),
        key_case() + [Case("nan", "root_logq", nan_logits), Case("shape", "root_logq", lambda x: st.just(x[0])),
                      Case("tree", "branching", lambda _: st.sampled_from([(), (0,), (1.5,), None])),
                      Case("rule", "scheme", lambda _: st.sampled_from(["nonsense", "hub", 3])),
                      Case("type", "active", lambda _: st.sampled_from([np.array([1.0]), np.ones(3, bool)]))])
    T["spectheory.trees.beam_tree"] = Entry(
        trees.beam_tree, lambda: dict(key=KEY, log_probs_fn=lm_fn(), beam_width=2, depth=2, vocab_size=V),
        key_case() + count_case("beam_width") + count_case("depth") + count_case("vocab_size")
        + [Case("type", "log_probs_fn", not_a("callable"))])
    T["spectheory.trees.node_paths"] = Entry(trees.node_paths, lambda: dict(tree=_tree2()), _tree_cases())
    T["spectheory.trees.table_laws"] = Entry(
        trees.table_laws, lambda: dict(model=_target_lm(), tree=_tree2()),
        _tree_cases() + [Case("type", "model", not_a("TableLM")),
                         Case("id_range", "prefix", lambda _: st.sampled_from([(V,), (-1,)]))])
    pair = lambda: dict(tree=_tree2(), node_rule="specinfer", vocab_size=V)  # noqa: E731
    rule_cases = [Case("rule", "node_rule", lambda _: st.sampled_from(["nonsense", "rsd", 3, None]))]
    T["spectheory.trees.check_pairing"] = Entry(trees.check_pairing, pair,
                                                _tree_cases() + rule_cases + count_case("vocab_size"))
    T["spectheory.trees.tree_num_uniforms"] = Entry(trees.tree_num_uniforms, pair,
                                                    _tree_cases() + rule_cases + count_case("vocab_size"))

    def tv_good(uniforms):
        def good():
            p, q = _tree_laws()
            d = dict(tree=_tree2(), p=p, q=q, node_rule="specinfer")
            if uniforms:
                d["uniforms"] = np.full(trees.tree_num_uniforms(_tree2(), "specinfer", V), 0.3)
            else:
                d["key"] = KEY
            return d
        return good

    tv_cases = law_cases("p", "q") + _tree_cases() + rule_cases
    T["spectheory.trees.tree_verify"] = Entry(trees.tree_verify, tv_good(False), tv_cases + key_case(),
                                              traced=("p", "q"), tokens=lambda r: r.tokens)
    T["spectheory.trees.tree_verify_with_uniforms"] = Entry(
        trees.tree_verify_with_uniforms, tv_good(True),
        tv_cases + [Case("param", "uniforms", lambda u: st.sampled_from([u * np.nan, u + 1.0, -u]), True)],
        traced=("p", "q", "uniforms"), tokens=lambda r: r.tokens)
    T["spectheory.trees.tree_kernel"] = Entry(
        trees.tree_kernel, lambda: dict(tree=_tree2(), p=_tree_laws()[0], q=_tree_laws()[1], node_rule="specinfer"),
        law_cases("p", "q") + _tree_cases() + rule_cases)
    # --- parallel -------------------------------------------------------------------------------
    T["spectheory.parallel.batch_mesh"] = Entry(
        parallel.batch_mesh, lambda: dict(devices=jax.devices()[:1]),
        [Case("type", "devices", lambda _: st.sampled_from([[], [0, 1], "cpu", [jax.devices()[0]] * 2])),
         Case("type", "axis_name", lambda _: st.sampled_from(["", 3, None]))])
    T["spectheory.parallel.sharded_vmap"] = Entry(
        parallel.sharded_vmap, lambda: dict(fn=lambda x: x),
        [Case("type", "fn", not_a("callable")), Case("type", "mesh", lambda _: st.sampled_from(["mesh", 3])),
         Case("param", "in_axes", lambda _: st.sampled_from([1, (0, 2), -1, True]))])
    # --- decode ---------------------------------------------------------------------------------
    prop = lambda: decode.chain_proposer(_causal(_draft_lm()), 2)  # noqa: E731
    T["spectheory.decode.init"] = Entry(
        decode.init, lambda: dict(target=_causal(), proposer=prop(), prompts=[[1, 2]], max_new_tokens=3),
        count_case("max_new_tokens") + [Case("id_range", "prompts", lambda _: st.sampled_from([[[1, V]], [[-1, 2]]])),
                                        Case("id_float", "prompts", lambda _: st.just([[1.5, 2.0]])),
                                        Case("type", "target", not_a("model")), Case("type", "proposer", not_a("p")),
                                        Case("id_range", "eos_token_id", lambda _: st.sampled_from([V, -2, 1.5]))])
    T["spectheory.decode.build_step"] = Entry(
        decode.build_step, lambda: dict(target=_causal(), proposer=prop(), verifier="single"),
        [Case("rule", "verifier", lambda _: st.sampled_from(["nonsense", 3, None])),
         Case("param", "temperature", bad_float((np.nan, -1.0, np.inf))),
         Case("param", "top_p", bad_float((0.0, 1.5))), Case("param", "top_k", lambda _: st.sampled_from([0, -1]))])
    T["spectheory.decode.chain_proposer"] = Entry(decode.chain_proposer, lambda: dict(draft_lm=_causal(), gamma=2),
                                                  count_case("gamma") + [Case("type", "draft_lm", not_a("model"))])
    T["spectheory.decode.tree_proposer"] = Entry(
        decode.tree_proposer, lambda: dict(draft_lm=_causal(), scheme="iid", branching=(2, 1)),
        [Case("tree", "branching", lambda _: st.sampled_from([(), (0,), (1.5,), None])),
         Case("rule", "scheme", lambda _: st.sampled_from(["nonsense", "hub", 3])),
         Case("type", "draft_lm", not_a("model"))])
    T["spectheory.decode.lookup_proposer"] = Entry(decode.lookup_proposer, lambda: dict(fn=lambda *a: None, gamma=2),
                                                   count_case("gamma") + [Case("type", "fn", not_a("callable"))])
    T["spectheory.decode.chain_tree"] = Entry(decode.chain_tree, lambda: dict(drafts=jnp.array([[1, 2]])),
                                              [Case("id_float", "drafts", float_ids),
                                               Case("id_range", "drafts", lambda x: st.just(x * 0 - 1)),
                                               Case("rule", "scheme", lambda _: st.sampled_from(["nonsense", 3]))])
    return T


TABLE = _table()

#: Entries whose ``good`` is only a placeholder (every call of them is a bad one).
NO_LEGAL_CALL = {"spectheory.register", "spectheory.models.torch_to_jax", "spectheory.models.gpt_from_pretrained"}

#: Public names without an entry, with the reason.
EXEMPT = {
    # classes and contract types: their constructors are NamedTuple/dataclass field lists
    **{f"spectheory.{n}": "contract type (NamedTuple of functions or results), built by make_verifier/register"
       for n in ("ChainVerifier", "DraftScheme", "Rule", "Verifier", "VerifyResult")},
    "spectheory.rules": "takes no arguments",
    "spectheory.drafts.schemes": "takes no arguments",
    "spectheory.drafts.MAX_LAW_SIZE": "constant",
    "spectheory.verify.BISECTION_STEPS": "constant",
    "spectheory.verify.MAX_LP_VARIABLES": "constant",
    "spectheory.verify.TOKEN": "ChainVerifier value whose functions are verify.chain, chain_with_uniforms, chain_kernel",
    "spectheory.verify.BLOCK": "ChainVerifier value whose functions are verify.block, block_with_uniforms, block_kernel",
    "spectheory.verify.ChainResult": "result NamedTuple",
    "spectheory.verify.BlockQuantities": "result NamedTuple",
    "spectheory.audit.AUTO_EXACT_LIMIT": "constant",
    **{f"spectheory.audit.{n}": "result NamedTuple"
       for n in ("Acceptance", "ExactAudit", "ChainAudit", "TreeAudit", "ChiSquareResult")},
    "spectheory.models.CausalLM": "abstract protocol (no constructor)",
    "spectheory.models.TableCache": "cache NamedTuple built by TableCausalLM",
    "spectheory.models.HFCausalLM": "wraps a transformers model object (needs torch); covered in tests/models",
    "spectheory.models.HFCache": "cache NamedTuple built by HFCausalLM",
    "spectheory.models.JaxCausalLM": "wraps a user's JAX model function; covered in tests/models",
    "spectheory.models.JaxCache": "cache NamedTuple built by JaxCausalLM",
    "spectheory.models.GPTConfig": "NamedTuple of sizes; checked by gpt_init",
    "spectheory.models.PromptLookupDraft": "result NamedTuple of prompt_lookup",
    "spectheory.models.EOS": "constant",
    "spectheory.models.SHIPPED_MODELS": "constant",
    "spectheory.models.load_shipped_models": "takes no arguments",
    "spectheory.models.shipped_training_summary": "takes no arguments",
    "spectheory.testing.LosslessReport": "result NamedTuple",
    "spectheory.testing.naive_independent_rule": "the deliberately wrong rule (a test fixture), not an API to call",
    "spectheory.testing.naive_independent_verifier": "the deliberately wrong verifier (a test fixture)",
    **{f"spectheory.bounds.{n}": "result NamedTuple"
       for n in ("OptimalAcceptance", "SubsetBound", "LPAcceptance", "OptimalGamma")},
    "spectheory.sampling.BeamResult": "result NamedTuple",
    "spectheory.trees.DraftTree": "NamedTuple of arrays; built and checked by tree_from_parents / the builders",
    "spectheory.trees.TreeResult": "result NamedTuple",
    **{f"spectheory.decode.{n}": "state/result NamedTuple"
       for n in ("DecodeState", "StepInfo", "Proposal", "Proposer", "DraftModelState", "LogLaw", "GenerateOutput")},
    "spectheory.decode.supported_verifiers": "takes no arguments",
}


def public_names() -> dict:
    """Every public name of the package: ``{qualified name: object}`` over ``spectheory.__all__``
    and each subpackage's ``__all__`` (modules themselves excluded)."""
    import importlib
    import inspect

    out = {}
    pkgs = ["spectheory"] + [f"spectheory.{m}" for m in spectheory.__all__
                             if inspect.ismodule(getattr(spectheory, m))]
    for pkg in pkgs:
        mod = importlib.import_module(pkg)
        for n in mod.__all__:
            obj = getattr(mod, n)
            if not inspect.ismodule(obj):
                out[f"{pkg}.{n}"] = obj
    return out


#: Names whose object is another public name's (aliases): covered by that entry.
ALIASES = {"spectheory.generate": "spectheory.decode.generate"}
TABLE["spectheory.decode.generate"] = TABLE.pop("spectheory.generate")
