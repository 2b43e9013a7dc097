"""Registration of the built-in rules (private). A new rule joins the registry here.

The built-ins are registered with ``audit=False`` to keep ``import spectheory`` fast (the
registration audit would compile every kernel at import, and ``"optimal"`` solves an LP per
draft tuple); ``tests/test_registry.py`` runs the same registration audit
(:func:`spectheory._registry.audit_rule`) on every one of them, and the conformance suite audits
them far more widely.
"""

from spectheory import drafts as _d
from spectheory import verify as _vf
from spectheory._registry import Rule, register

BUILTIN = (
    Rule("single", _d.IID, _vf.SINGLE, fixed_n=1, description="maximal coupling, one draft (Leviathan et al. 2023)"),
    Rule("specinfer", _d.IID, _vf.SPECINFER,
         description="recursive rejection sampling with replacement, i.i.d. drafts (Miao et al. 2024)"),
    Rule("rsd", _d.WITHOUT_REPLACEMENT, _vf.RSD,
         description="recursive rejection sampling without replacement (Jeon et al. 2024)"),
    Rule("spectr", _d.IID, _vf.SPECTR, description="K-SEQ, i.i.d. drafts (Sun et al., SpecTr 2023)"),
    Rule("greedy", _d.GREEDY, _vf.GREEDY_OPTIMAL,
         description="greedy drafts with their optimal verifier (Hu et al. 2025)"),
    Rule("spechub", _d.HUB, _vf.SPECHUB, fixed_n=2, description="hub drafts, n = 2 (Sun et al., SpecHub 2024)"),
    Rule("optimal", _d.IID, _vf.OPTIMAL,
         description="transport-LP optimum for i.i.d. drafts, host side, small V (SpecTr; Hu et al. 2025)"),
)
"""The built-in rules, in registration order."""

for _r in BUILTIN:
    register(_r, audit=False)  # audited by tests/test_registry.py and the conformance suite
