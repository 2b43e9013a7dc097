"""HFCausalLM on the shipped byte-level GPT-2 models, against full-recompute forwards.

Tolerance: float32 models; cached, masked, position-shifted attention sums in a different order
than a fresh forward, so logits (magnitude ~10) agree to ``atol = rtol = 1e-4``.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import jax  # noqa: E402

from spectheory.models import (  # noqa: E402
    EOS,
    HFCausalLM,
    decode_bytes,
    encode_bytes,
    load_shipped_models,
    shipped_model_path,
    shipped_training_summary,
    torch_to_jax,
)

from _causal_lm_checks import (  # noqa: E402
    Mirror,
    check_incremental,
    check_padded_tree,
    check_speculative_rollback,
    check_tree,
)

TOL = dict(atol=1e-4, rtol=1e-4)

SNIPPET = '''def fibonacci(n):
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        return self.items.pop()
'''


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    return load_shipped_models()


def reference_for(model):
    def ref(seq):
        with torch.no_grad():
            return model(input_ids=torch.tensor([seq])).logits[0].numpy()
    return ref


def mirror(model, seed, batch=3):
    rng = np.random.default_rng(seed)
    return Mirror(HFCausalLM(model), reference_for(model), batch, rng, **TOL)


def test_shipped_models_load_with_from_pretrained(models):
    from transformers import GPT2LMHeadModel

    target, draft = models
    assert isinstance(target, GPT2LMHeadModel) and isinstance(draft, GPT2LMHeadModel)
    assert target.config.vocab_size == draft.config.vocab_size == EOS + 1
    assert target.config.n_layer > draft.config.n_layer
    for name in ("target", "draft"):
        assert (shipped_model_path(name) / "model.safetensors").is_file()
    s = shipped_training_summary()
    assert s["heldout_loss_target"] < s["heldout_loss_draft"]


def test_shipped_target_beats_draft_on_unseen_code(models):
    """Not trained on this snippet: the target predicts it better, and the two are correlated."""
    x = torch.tensor([encode_bytes(SNIPPET)[:256].tolist()])  # the models have 256 positions
    with torch.no_grad():
        lp, lq = (torch.log_softmax(m(input_ids=x).logits[0, :-1], -1) for m in models)
    y = x[0, 1:, None]
    loss_p, loss_q = -lp.gather(-1, y).mean().item(), -lq.gather(-1, y).mean().item()
    acceptance = torch.minimum(lp.exp(), lq.exp()).sum(-1).mean().item()
    assert loss_p < loss_q < 3.0
    assert 0.5 < acceptance < 0.95


def test_bytes_roundtrip():
    assert decode_bytes(np.append(encode_bytes("héllo"), EOS)) == "héllo"


@pytest.mark.parametrize("which", [0, 1])
def test_incremental_equals_full_recompute(models, which):
    check_incremental(mirror(models[which], seed=which))


def test_ragged_rollback(models):
    check_speculative_rollback(mirror(models[0], seed=2))


@pytest.mark.parametrize("per_row", [False, True])
def test_tree_scoring_equals_path_scoring(models, per_row):
    check_tree(mirror(models[0], seed=3, batch=2), per_row=per_row)


def test_padded_trees(models):
    check_padded_tree(mirror(models[0], seed=4, batch=2))


def test_holes_and_compaction(models):
    m = mirror(models[0], seed=5)
    check_speculative_rollback(m)
    cache = m.cache
    assert (cache.positions < 0).any()  # ragged rollbacks left holes
    assert cache.physical_len > max(len(r) for r in m.rows)
    m.cache = m.lm.compact(cache)
    assert m.cache.physical_len == max(len(r) for r in m.rows)
    for b, row in enumerate(m.rows):
        pos = m.cache.positions[b]
        np.testing.assert_array_equal(pos[pos >= 0], np.arange(len(row)))
    m.chain(m.tokens((3, 3)))


def test_rollback_to_empty_then_restart(models):
    m = mirror(models[1], seed=6, batch=2)
    m.chain(m.tokens((2, 4)))
    m.rollback([0, 0])
    assert m.cache.physical_len == 0
    m.chain(m.tokens((2, 3)))


def test_errors(models):
    lm = HFCausalLM(models[1])
    cache = lm.init_cache(2, max_len=8)
    with pytest.raises(ValueError, match="commit"):
        lm.commit(cache, np.ones((2, 1), bool))
    _, cache = lm.logits(np.zeros((2, 3), int), cache)
    with pytest.raises(ValueError, match="rollback"):
        lm.rollback(cache, [4, 1])
    with pytest.raises(ValueError, match="max_len"):
        lm.logits(np.zeros((2, 6), int), cache)
    with pytest.raises(ValueError, match="token ids"):
        lm.logits(np.full((2, 1), 999), cache)
    with pytest.raises(ValueError, match="parents"):
        lm.logits(np.zeros((2, 3), int), cache, parents=[-1, 2, 0])
    _, cache = lm.logits(np.zeros((2, 3), int), cache, parents=[-1, 0, 0])
    with pytest.raises(ValueError, match="root path"):
        lm.commit(cache, np.array([[1, 1, 1], [0, 0, 0]], bool))
    with pytest.raises(ValueError, match="parent"):
        lm.commit(cache, np.array([[0, 1, 0], [0, 0, 0]], bool))
    with pytest.raises(ValueError, match="max_len"):
        lm.init_cache(1, max_len=10_000)


def test_logits_cross_to_jax_as_float32():
    t = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    for x in (t, t[:, 1:], t.to(torch.bfloat16), t.double()):  # dlpack, non-contiguous, casts
        y = torch_to_jax(x)
        assert isinstance(y, jax.Array) and y.dtype == np.float32
        np.testing.assert_array_equal(np.asarray(y), x.float().numpy())


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_rope_gqa_architecture(attn):
    """A tiny random Llama (rotary positions, grouped-query attention): explicit position ids and
    the 4-D mask work beyond GPT-2, with both attention implementations."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    model = LlamaForCausalLM(cfg)
    model.config._attn_implementation = attn
    check_speculative_rollback(mirror(model, seed=7, batch=2))
    check_tree(mirror(model, seed=8, batch=2), rounds=1)


def test_shipped_gpt2_eager_attention(models):
    model = models[1]
    impl = model.config._attn_implementation
    model.config._attn_implementation = "eager"
    try:
        check_tree(mirror(model, seed=9, batch=2), rounds=1)
    finally:
        model.config._attn_implementation = impl
