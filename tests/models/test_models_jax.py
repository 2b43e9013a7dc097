"""JaxCausalLM on the package's small JAX GPT (and on a Flax module), against full recompute.

Tolerance: float32; a different padding length changes XLA's reduction order slightly, so
logits agree to ``atol = rtol = 1e-5`` (1e-4 for the shipped weights against torch).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectheory.models import (
    CausalLM,
    GPTConfig,
    HFCausalLM,
    JaxCausalLM,
    gpt_from_pretrained,
    gpt_init,
    gpt_logits,
)

from _causal_lm_checks import (
    Mirror,
    check_incremental,
    check_padded_tree,
    check_speculative_rollback,
    check_tree,
    ragged_prefill,
)

TOL = dict(atol=1e-5, rtol=1e-5)
CFG = GPTConfig(vocab_size=23, n_positions=40, n_embd=16, n_layer=2, n_head=2)


@functools.lru_cache(maxsize=None)
def gpt_lm():
    params = gpt_init(jax.random.key(0), CFG)
    apply_fn = functools.partial(gpt_logits, config=CFG)
    lm = JaxCausalLM(apply_fn, params, CFG.vocab_size, max_len=CFG.n_positions)
    return lm, padded_reference(apply_fn, params, CFG.n_positions)


def padded_reference(apply_fn, params, length):
    """Full forward of one sequence, right-padded to a fixed length (one compilation; the
    model is causal, so the padding does not change the logits of the real tokens)."""
    f = jax.jit(apply_fn)

    def ref(seq):
        x = np.zeros((1, length), np.int32)
        x[0, : len(seq)] = seq
        return np.asarray(f(params, jnp.asarray(x)))[0, : len(seq)]

    return ref


class Jitted:
    """The same adapter with every method under ``jax.jit`` (the wrapper is a pytree)."""

    def __init__(self, lm):
        self.lm = lm
        self.vocab_size = lm.vocab_size
        self._logits = jax.jit(lambda lm, t, c, v, p: lm.logits(t, c, valid=v, parents=p))
        self._commit = jax.jit(lambda lm, c, k: lm.commit(c, k))
        self._rollback = jax.jit(lambda lm, c, n: lm.rollback(c, n))

    def init_cache(self, batch_size, max_len=None):
        return self.lm.init_cache(batch_size, max_len)

    def lengths(self, cache):
        return self.lm.lengths(cache)

    def logits(self, tokens, cache, *, valid=None, parents=None):
        return self._logits(self.lm, tokens, cache, valid, parents)

    def commit(self, cache, keep):
        return self._commit(self.lm, cache, keep)

    def rollback(self, cache, lengths):
        return self._rollback(self.lm, cache, lengths)


def mirror(seed, batch=3, jit=False):
    lm, ref = gpt_lm()
    return Mirror(Jitted(lm) if jit else lm, ref, batch, np.random.default_rng(seed), **TOL)


def test_protocol():
    lm, _ = gpt_lm()
    assert isinstance(lm, CausalLM)
    cache = lm.init_cache(2)
    assert cache.tokens.shape == (2, CFG.n_positions)
    np.testing.assert_array_equal(lm.lengths(cache), [0, 0])


def test_incremental_equals_full_recompute():
    check_incremental(mirror(0, batch=2))


def test_ragged_rollback():
    check_speculative_rollback(mirror(1, batch=2))


@pytest.mark.parametrize("per_row", [False, True])
def test_tree_scoring_equals_path_scoring(per_row):
    check_tree(mirror(2, batch=2), per_row=per_row)


def test_padded_trees():
    check_padded_tree(mirror(4, batch=2))


def test_under_an_outer_jit():
    """The adapter is a pytree: the whole protocol runs inside a user's jit (traced parents,
    traced keep, traced lengths) and agrees with the oracle."""
    m = mirror(3, batch=2, jit=True)
    ragged_prefill(m, [4, 2])
    m.tree(m.tokens((2, 4)), np.array([[-1, 0, 0, 1], [-1, 0, 1, -1]]))
    m.commit_random_paths()
    before = [len(r) for r in m.rows]
    m.chain(m.tokens((2, 4)))
    m.rollback([before[0] + 1, before[1] + 3])
    m.chain(m.tokens((2, 4)))


def test_shipped_weights_match_torch():
    """gpt_from_pretrained + gpt_logits reproduces the torch GPT-2 of the shipped target."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from spectheory.models import encode_bytes, load_shipped_models, shipped_model_path

    config, params = gpt_from_pretrained(shipped_model_path("target"))
    target, _ = load_shipped_models()
    x = encode_bytes("import os\n\ndef main(argv):\n    return os.path.join(*argv)\n")
    with torch.no_grad():
        want = target(input_ids=torch.tensor([x.tolist()])).logits[0].numpy()
    got = np.asarray(gpt_logits(params, x[None], config))[0]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
    # and both adapters give the same tree logits
    parents = np.array([-1, 0, 0, 1])
    jl = JaxCausalLM(functools.partial(gpt_logits, config=config), params, config.vocab_size, 64)
    hl = HFCausalLM(target)
    out = []
    for lm in (jl, hl):
        _, cache = lm.logits(x[None, :20], lm.init_cache(1, 64))
        out.append(np.asarray(lm.logits(x[None, 20:24], cache, parents=parents)[0]))
    np.testing.assert_allclose(out[0], out[1], atol=1e-4, rtol=1e-4)


def test_wraps_a_flax_module():
    """'Any JAX function': a Flax linen causal LM through its ``apply``."""
    nn = pytest.importorskip("flax.linen")

    class TinyLM(nn.Module):
        vocab: int = 13

        @nn.compact
        def __call__(self, tokens):
            x = nn.Embed(self.vocab, 16)(tokens)
            x = x + self.param("pos", nn.initializers.normal(0.1), (32, 16))[: tokens.shape[1]]
            mask = nn.make_causal_mask(tokens)
            x = x + nn.MultiHeadDotProductAttention(num_heads=2)(x, mask=mask)
            return nn.Dense(self.vocab)(nn.gelu(x))

    model = TinyLM()
    params = model.init(jax.random.key(1), jnp.zeros((1, 32), jnp.int32))
    lm = JaxCausalLM(model.apply, params, 13, max_len=32)
    m = Mirror(lm, padded_reference(model.apply, params, 32), 2, np.random.default_rng(5), **TOL)
    check_incremental(m)
    check_tree(Mirror(lm, m.reference, 2, np.random.default_rng(6), **TOL), rounds=1)
