r"""The two small byte-level GPT-2 models shipped with the package (private).

``spectheory/models/data/target`` (4 layers, d = 128, 0.86 M parameters, 3.4 MB) and
``spectheory/models/data/draft`` (1 layer, d = 64, 0.08 M parameters, 0.3 MB) are GPT-2s
(``transformers.GPT2LMHeadModel``, float32 safetensors) trained on the Python standard library's
source (top-level ``*.py`` files of CPython 3.11.7; every 10th file held out) by::

    python paper_repro/train_models.py --out spectheory/models/data

(torch 2.13.0 CPU, one thread, seed 0; 400 AdamW steps of 16 x 256 bytes each; 428 s for the
target and 49 s for the draft on a shared 2-core machine; a rerun reproduced both files bit for
bit). Final training loss (EMA) 2.18 / 2.51 nats per byte; held-out loss 2.15 (target) and 2.46
(draft) nats per byte; held-out single-draft acceptance, the mean over positions of
:math:`\sum_x \min(p(x), q(x))` at temperature 1, is 0.74. The exact record is
``data/training_summary.json`` (:func:`shipped_training_summary`).

These are small, briefly trained models: samples at temperature 1 look like Python only
locally. They exist to make acceptance rates and speculative generation measurable on real
(non-synthetic) conditionals, offline, in seconds.

Tokens are bytes: id ``b`` < 256 is the byte ``b``, :data:`EOS` = 256 separates documents;
``V = 257``. Context: 256 positions.
"""

from __future__ import annotations

import json
import pathlib

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = [
    "EOS",
    "SHIPPED_MODELS",
    "shipped_model_path",
    "load_shipped_models",
    "shipped_training_summary",
    "encode_bytes",
    "decode_bytes",
]

#: Token id of the end-of-document separator of the shipped byte-level models (one past the
#: last byte id, so the vocabulary size is ``EOS + 1 = 257``).
EOS = 256
#: Names of the shipped models, in the order :func:`load_shipped_models` returns them.
SHIPPED_MODELS = ("target", "draft")
_DATA = pathlib.Path(__file__).resolve().parent / "data"


def shipped_model_path(name: str) -> pathlib.Path:
    """Directory of a shipped model (``"target"`` or ``"draft"``), for ``from_pretrained``.

    Args:
      name: which model, one of :data:`SHIPPED_MODELS` (``"target"`` or ``"draft"``).

    Returns:
      The absolute ``pathlib.Path`` of the model's directory inside the installed package (it
      holds ``config.json``, ``generation_config.json`` and ``model.safetensors``).

    Raises:
      ValueError: ``name`` is not one of :data:`SHIPPED_MODELS`.
      FileNotFoundError: the model's files are missing.
    """
    if not isinstance(name, str) or name not in SHIPPED_MODELS:
        raise ValueError(f"name: unknown shipped model {name!r}; choose from {SHIPPED_MODELS}")
    path = _DATA / name
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"shipped model files missing under {path}")
    return path


def load_shipped_models():
    """``(target, draft)``: the shipped ``transformers.GPT2LMHeadModel`` pair, in eval mode,
    loaded with ``from_pretrained(..., local_files_only=True)`` (needs torch + transformers).

    Returns:
      A tuple ``(target, draft)`` of two ``transformers.GPT2LMHeadModel`` (torch, float32, on
      the CPU, in eval mode), in the order of :data:`SHIPPED_MODELS`.

    Raises:
      ImportError: ``transformers`` (or torch) is not installed.
      FileNotFoundError: the model's files are missing.
    """
    from transformers import GPT2LMHeadModel

    return tuple(
        GPT2LMHeadModel.from_pretrained(shipped_model_path(n), local_files_only=True).eval()
        for n in SHIPPED_MODELS
    )


def shipped_training_summary() -> dict:
    """Settings and results of the training run that produced the shipped weights.

    Returns:
      The parsed ``data/training_summary.json``: a fresh ``dict`` with the run's settings
      (``"command"``, ``"python"``, ``"torch"``, ``"corpus"``, ``"block"``, ``"batch"``,
      ``"seed"``, ...), one sub-dict per model (``"target"``, ``"draft"``: ``n_layer``,
      ``n_embd``, ``params``, ``final_train_loss_ema``, ...) and the held-out results
      (``"heldout_loss_target"``, ``"heldout_loss_draft"``, ``"heldout_acceptance"``).
    """
    return json.loads((_DATA / "training_summary.json").read_text())


def encode_bytes(text: str | bytes) -> np.ndarray:
    """Token ids (``int32[S]``) of a string (UTF-8) or bytes.

    Args:
      text: a ``str`` (encoded as UTF-8) or bytes-like (``bytes``, ``bytearray``,
        ``memoryview``).

    Returns:
      A NumPy ``int32[S]`` array, one id in ``[0, 256)`` per byte (``S`` = number of bytes; no
      :data:`EOS` is appended).

    Raises:
      TypeError: ``text`` is neither a ``str`` nor bytes-like (``bytes``, ``bytearray``,
        ``memoryview``); an int would otherwise become that many zero bytes.

    >>> encode_bytes("hi").tolist()
    [104, 105]
    """
    if not isinstance(text, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"text: expected a str or bytes, got {type(text).__name__}")
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return np.frombuffer(data, dtype=np.uint8).astype(np.int32)


def decode_bytes(tokens: ArrayLike) -> str:
    """Text of token ids: ids outside ``[0, 256)`` (``EOS``, the padding ``-1``) are dropped,
    bad UTF-8 is replaced.

    Args:
      tokens: integer token ids of any shape (array-like; flattened in row-major order).

    Returns:
      The ``str`` decoded as UTF-8 from the bytes of the ids in ``[0, 256)``, invalid
      sequences replaced by U+FFFD.

    Raises:
      ValueError: ``tokens`` are not integer ids (floats would be truncated).

    >>> decode_bytes([104, 105, EOS, -1])
    'hi'
    """
    if tokens is None or isinstance(tokens, (str, bytes)):
        raise ValueError(f"tokens: expected integer token ids, got {type(tokens).__name__}")
    t = np.asarray(jnp.asarray(tokens)).reshape(-1)
    if t.size and (t.dtype == bool or not np.issubdtype(t.dtype, np.integer)):
        raise ValueError(f"tokens: expected integer token ids, got dtype {t.dtype}")
    return bytes(int(x) for x in t if 0 <= x < 256).decode("utf-8", errors="replace")
