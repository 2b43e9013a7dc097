"""Models: toy tabular models for exact audits (and adapters for real causal LMs)."""

from spectheory.models._table import TableLM

__all__ = ["TableLM"]
