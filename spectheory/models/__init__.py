"""Models: the causal-LM contract, adapters for real models, drafters, shipped small models.

* :class:`TableLM`, a toy autoregressive model with explicit next-token laws (exact audits);
* :class:`TableCausalLM`, a :class:`TableLM` behind the :class:`CausalLM` contract;
* :class:`CausalLM`, the contract speculative generation is built on (chain scoring,
  per-row rollback, one-pass tree scoring), and its tree helpers;
* :class:`HFCausalLM`, any ``transformers`` causal LM (torch) with its KV cache;
* :class:`JaxCausalLM`, any JAX function ``(params, tokens) -> logits`` (full recompute), and a
  small GPT in plain ``jax.numpy`` (:func:`gpt_init`, :func:`gpt_logits`,
  :func:`gpt_from_pretrained`);
* :func:`prompt_lookup`, an n-gram drafter with point-mass draft laws (:func:`point_mass`);
* two small byte-level GPT-2 models trained on the Python standard library
  (:func:`load_shipped_models`, :func:`shipped_model_path`).

torch, transformers and safetensors are imported only when a function needs them.
"""

from spectheory.models._table import TableLM
from spectheory.models._table_causal import TableCache, TableCausalLM
from spectheory.models._causal_lm import (
    CausalLM,
    chain_parents,
    tree_ancestors,
    tree_depths,
    tree_paths,
)
from spectheory.models._hf import HFCache, HFCausalLM, torch_to_jax
from spectheory.models._jax_lm import (
    GPTConfig,
    JaxCache,
    JaxCausalLM,
    gpt_from_pretrained,
    gpt_init,
    gpt_logits,
)
from spectheory.models._prompt_lookup import PromptLookupDraft, point_mass, prompt_lookup
from spectheory.models._shipped import (
    EOS,
    SHIPPED_MODELS,
    decode_bytes,
    encode_bytes,
    load_shipped_models,
    shipped_model_path,
    shipped_training_summary,
)

__all__ = [
    "TableLM",
    "TableCausalLM",
    "TableCache",
    "CausalLM",
    "chain_parents",
    "tree_ancestors",
    "tree_depths",
    "tree_paths",
    "HFCausalLM",
    "HFCache",
    "torch_to_jax",
    "JaxCausalLM",
    "JaxCache",
    "GPTConfig",
    "gpt_init",
    "gpt_logits",
    "gpt_from_pretrained",
    "PromptLookupDraft",
    "prompt_lookup",
    "point_mass",
    "EOS",
    "SHIPPED_MODELS",
    "shipped_model_path",
    "load_shipped_models",
    "shipped_training_summary",
    "encode_bytes",
    "decode_bytes",
]
