"""Test-wide configuration: float64 available, derandomized hypothesis, and the shared test
helpers (``tests/_*.py``) importable from every test folder (the folders mirror the package)."""

import sys
from pathlib import Path

import jax
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "examples"))

# The README's extension example: importing its one file registers the rule "max-ratio", so
# every suite that iterates over the registry (conformance, trees, decode) runs it too.
import max_ratio_rule  # noqa: E402,F401

jax.config.update("jax_enable_x64", True)

settings.register_profile(
    "spectheory",
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("spectheory")
