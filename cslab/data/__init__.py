"""Data: the contract, loading and validation, the monthly panel, snapshot tables, synthetic data."""

from cslab.data.io import CSData, UsageTable, load, validate
from cslab.data.panel import MOVEMENTS, panel
from cslab.data.snapshot import load_customers
from cslab.data.validation import Problem, ValidationReport

__all__ = [
    "CSData",
    "UsageTable",
    "load",
    "validate",
    "panel",
    "MOVEMENTS",
    "load_customers",
    "Problem",
    "ValidationReport",
]
