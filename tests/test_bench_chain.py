"""The vLLM glue of ``benchmarks/bench_chain.py``: layout adapters and the skip path.

vLLM itself is not needed: a fake ``vllm`` package (``FakeV0RejectionSampler``,
``fake_rejection_sample``, ``FakeSamplingMetadata``) records what the script hands it.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.delitem(sys.modules, "bench_chain", raising=False)
    return importlib.import_module("bench_chain")


def problem(B=3, g=2, V=7, seed=0):
    rng = np.random.default_rng(seed)
    tl = rng.standard_normal((B, g + 1, V)).astype(np.float32)
    p = np.exp(tl) / np.exp(tl).sum(-1, keepdims=True)
    q = rng.dirichlet(np.ones(V), size=(B, g)).astype(np.float32)
    d = rng.integers(0, V, size=(B, g)).astype(np.int32)
    bonus = rng.integers(0, V, size=B)
    return tl, p.astype(np.float32), q, d, bonus


# --- fakes standing in for vLLM ----------------------------------------------------------------

class FakeV0RejectionSampler:
    """Fake of vLLM V0 ``RejectionSampler`` (0.7 to 0.9.2 signatures); records its calls."""

    calls: list = []

    def __init__(self, strict_mode=False, use_flashinfer=None):
        self.init = dict(strict_mode=strict_mode, use_flashinfer=use_flashinfer)
        self.tensors = None

    def init_tensors(self, device, device_type="cuda"):
        self.tensors = (device, device_type)

    def forward(self, target_with_bonus_probs, bonus_token_ids, draft_probs, draft_token_ids, seeded_seqs=None):
        FakeV0RejectionSampler.calls.append(dict(
            target_with_bonus_probs=target_with_bonus_probs, bonus_token_ids=bonus_token_ids,
            draft_probs=draft_probs, draft_token_ids=draft_token_ids, init=self.init, tensors=self.tensors))
        B, g = draft_token_ids.shape
        out = torch.full((B, g + 1), -1, dtype=torch.int64)
        out[:, 0] = bonus_token_ids[:, 0]
        return out

    __call__ = forward


@dataclasses.dataclass
class FakeSamplingMetadata:
    """Fake of V1 ``SamplingMetadata``: a subset of its fields plus one the script cannot know."""

    temperature: object
    all_greedy: bool
    all_random: bool
    generators: dict
    logitsprocs: object
    some_future_field: object
    spec_token_ids: object = None


def fake_rejection_sample(draft_token_ids, num_draft_tokens, max_spec_len, cu_num_draft_tokens, draft_probs,
                          target_logits, bonus_token_ids, sampling_metadata):
    """Fake of V1 ``rejection_sample`` (0.16+ parameter names)."""
    return torch.full((len(num_draft_tokens), max_spec_len + 1), -1, dtype=torch.int32)


def fake_rejection_sample_probs(draft_token_ids, num_draft_tokens, max_spec_len, cu_num_draft_tokens, draft_probs,
                                target_probs, bonus_token_ids, sampling_metadata):
    """Fake of V1 ``rejection_sample`` (0.8.1 to 0.15.x parameter names)."""
    return fake_rejection_sample(draft_token_ids, num_draft_tokens, max_spec_len, cu_num_draft_tokens,
                                 draft_probs, target_probs, bonus_token_ids, sampling_metadata)


def install_fake_vllm(monkeypatch, v0=True, v1=True):
    def mod(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, m)
        return m

    for name in ("vllm", "vllm.model_executor", "vllm.model_executor.layers", "vllm.v1", "vllm.v1.sample"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    mod("vllm", __version__="0.0.0-fake")
    if v0:
        mod("vllm.model_executor")
        mod("vllm.model_executor.layers")
        mod("vllm.model_executor.layers.rejection_sampler", RejectionSampler=FakeV0RejectionSampler)
    if v1:
        mod("vllm.v1")
        mod("vllm.v1.sample")
        mod("vllm.v1.sample.rejection_sampler", rejection_sample=fake_rejection_sample)
        mod("vllm.v1.sample.metadata", SamplingMetadata=FakeSamplingMetadata)
    FakeV0RejectionSampler.calls = []


# --- adapters ----------------------------------------------------------------------------------

def test_v0_layout(bench):
    tl, p, q, d, bonus = problem()
    kw = bench.vllm_v0_inputs(p, q, d, bonus, "cpu")
    B, g1, V = p.shape
    assert list(kw) == ["target_with_bonus_probs", "bonus_token_ids", "draft_probs", "draft_token_ids"]
    t = kw["target_with_bonus_probs"]
    assert t.shape == (B, g1, V) and t.dtype == torch.float32 and t.is_contiguous()
    assert kw["draft_probs"].shape == (B, g1 - 1, V) and kw["draft_probs"].dtype == torch.float32
    assert kw["draft_token_ids"].shape == (B, g1 - 1) and kw["draft_token_ids"].dtype == torch.int64
    assert kw["bonus_token_ids"].shape == (B, 1) and kw["bonus_token_ids"].dtype == torch.int64
    np.testing.assert_array_equal(t.numpy(), p)
    np.testing.assert_array_equal(kw["draft_token_ids"].numpy(), d)
    np.testing.assert_array_equal(kw["bonus_token_ids"].numpy()[:, 0], bonus)
    old = bench.vllm_v0_inputs(p, q, d, bonus, "cpu", target_param="target_probs")  # vllm <= 0.5
    assert old["target_probs"].shape == (B, g1 - 1, V)


@pytest.mark.parametrize("target_param", ["target_logits", "target_probs"])
def test_v1_layout(bench, target_param):
    tl, p, q, d, bonus = problem(B=3, g=2, V=7)
    args = bench.vllm_v1_inputs(tl, p, q, d, bonus, FakeSamplingMetadata, "cpu", target_param)
    draft_ids, num_draft, max_spec, cu, dprobs, target, bonus_t, meta = args
    assert draft_ids.shape == (6,) and draft_ids.dtype == torch.int32 and draft_ids.is_contiguous()
    np.testing.assert_array_equal(draft_ids.numpy(), d.reshape(-1))
    assert num_draft == [2, 2, 2] and max_spec == 2
    assert cu.dtype == torch.int32 and cu.tolist() == [2, 4, 6]
    assert dprobs.shape == (6, 7) and dprobs.dtype == torch.float32
    np.testing.assert_array_equal(dprobs.numpy()[2], q[1, 0])  # row b*g + i holds q[b, i]
    assert target.shape == (6, 7) and target.dtype == torch.float32 and target.is_contiguous()
    want = tl if target_param == "target_logits" else p
    np.testing.assert_array_equal(target.numpy()[5], want[2, 1])  # the bonus row is not passed
    assert bonus_t.shape == (3, 1) and bonus_t.dtype == torch.int64
    assert isinstance(meta, FakeSamplingMetadata)
    assert meta.all_random and not meta.all_greedy and meta.generators == {}
    assert meta.temperature.shape == (3,) and torch.all(meta.temperature == 1)
    assert meta.some_future_field is None and meta.spec_token_ids is None


def test_accepted_count_from_output(bench):
    out = torch.tensor([[5, -1, -1], [5, 6, -1], [5, 6, 7]])
    np.testing.assert_array_equal(bench.num_accepted_from_vllm(out), [0, 1, 2])


# --- selection and the script --------------------------------------------------------------------

def test_fake_v0_runs_and_v1_needs_cuda(bench, monkeypatch):
    install_fake_vllm(monkeypatch)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    tl, p, q, d, _ = problem(B=2, g=2, V=5)
    rows, notes = bench.vllm_sampler(tl, p, q, d, repeat=1)
    assert any("V1 rejection_sample found but skipped" in n and "CUDA" in n for n in notes)
    labels = [r[0] for r in rows]
    assert labels == ["floor (torch, cpu): one read of the float inputs given to vLLM",
                      "vLLM RejectionSampler (V0 torch, vllm 0.0.0-fake, cpu, probabilities)"]
    call = FakeV0RejectionSampler.calls[-1]
    assert call["init"]["use_flashinfer"] is False and call["tensors"] == ("cpu", "cpu")
    assert call["target_with_bonus_probs"].shape == (2, 3, 5)
    assert call["draft_token_ids"].dtype == torch.int64


def test_v1_signature_is_read(bench, monkeypatch):
    install_fake_vllm(monkeypatch, v0=False)
    monkeypatch.setattr(sys.modules["vllm.v1.sample.rejection_sampler"], "rejection_sample",
                        fake_rejection_sample_probs)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    found, notes = bench.vllm_callables()
    assert [f[0] for f in found] == [
        "vLLM RejectionSampler (V1 rejection_sample, vllm 0.0.0-fake, cuda, probabilities)"]


def test_main_prints_skip_note_without_vllm(bench, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    bench.main(["--batch", "2", "--gamma", "2", "--vocab", "50", "--repeat", "1"])
    out = capsys.readouterr().out
    assert "## Chain verification, B=2, gamma=2, V=50" in out
    assert "vLLM comparison skipped (vllm not installed;" in out
    assert "spectheory chain (probabilities, jit+vmap)" in out
