"""Draft schemes: how a tuple of drafts is drawn from the draft law ``q``.

Each scheme is a :class:`spectheory.DraftScheme`, the one identity of a draft law: a
jit-clean sampler (``sample``), the exact enumerated joint law used by the audits (``law``),
the log-space child sampler of draft trees (``children``, with ``children_law`` its exact law)
and the family of its draft *set* used by the bounds (``family``). The built-in schemes are
registered by name; :func:`scheme` resolves a name or a scheme object, :func:`schemes` lists
the registered names.

* :data:`IID` (``"iid"``): i.i.d. drafts (SpecInfer, SpecTr);
* :data:`WITHOUT_REPLACEMENT` (``"without_replacement"``): Gumbel-top-k, the Plackett-Luce
  law (RSD);
* :data:`GREEDY` (``"greedy"``): the ``n - 1`` most likely tokens and one draw from the rest
  (Hu et al. 2025);
* :data:`HUB` (``"hub"``): SpecHub's two drafts (no tree child sampler; greedy set law).
"""

from typing import Union

from spectheory import _registry
from spectheory._registry import DraftScheme
from spectheory.drafts._iid import IID, MAX_LAW_SIZE, iid_children, iid_law, iid_sample
from spectheory.drafts._without_replacement import (
    WITHOUT_REPLACEMENT,
    without_replacement_children,
    without_replacement_law,
    without_replacement_sample,
)
from spectheory.drafts._greedy import GREEDY, greedy_children, greedy_law, greedy_sample, greedy_top
from spectheory.drafts._hub import HUB, hub_law, hub_sample

__all__ = [
    "IID",
    "MAX_LAW_SIZE",
    "iid_children",
    "iid_law",
    "iid_sample",
    "WITHOUT_REPLACEMENT",
    "without_replacement_children",
    "without_replacement_law",
    "without_replacement_sample",
    "GREEDY",
    "greedy_children",
    "greedy_law",
    "greedy_sample",
    "greedy_top",
    "HUB",
    "hub_law",
    "hub_sample",
    "scheme",
    "schemes",
]

for _s in (IID, WITHOUT_REPLACEMENT, GREEDY, HUB):
    _registry.register(_s)
del _s


def scheme(name: Union[str, DraftScheme]) -> DraftScheme:
    r"""Resolve a draft scheme given as a registered name or a :class:`spectheory.DraftScheme`.

    A scheme object is returned as is; a name is looked up in the registry (the built-in
    ``"iid"``, ``"without_replacement"``, ``"greedy"``, ``"hub"``, and any scheme added with
    :func:`spectheory.register`). Two schemes are the same draft law iff they have the same
    name:

    .. math:: \mathrm{scheme}(s) = \mathrm{scheme}(t) \iff s.\mathrm{name} = t.\mathrm{name}.

    Args:
      name: a registered scheme name, or a :class:`spectheory.DraftScheme`.

    Returns:
      the :class:`spectheory.DraftScheme`.

    Raises:
      ValueError: if ``name`` is not a registered scheme name (the message lists them).
      TypeError: if ``name`` is neither a string nor a scheme.

    >>> scheme("hub").min_n, scheme(IID) is IID, scheme("greedy").family
    (2, True, 'greedy')

    References:
      Hu et al., Towards Optimal Multi-draft Speculative Decoding, ICLR 2025
      (arXiv 2502.18779) (draft schemes as joint laws of the draft tuple).
    """
    return _registry.scheme(name)


def schemes() -> list[str]:
    r"""Names of the registered draft schemes, in registration order (the built-in ones first).

    .. math:: \{\, s.\mathrm{name} : s \text{ registered} \,\}

    Returns:
      A new ``list`` of ``str``: the names under which :func:`scheme` resolves a
      :class:`~spectheory.DraftScheme` (schemes registered with a rule by
      :func:`spectheory.register` are appended).

    >>> schemes()[:4]
    ['iid', 'without_replacement', 'greedy', 'hub']

    References:
      Hu et al., ICLR 2025 (arXiv 2502.18779).
    """
    return _registry.schemes()
