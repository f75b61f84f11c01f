"""cslab: a research kit for customer-success analytics.

Examples
--------
>>> import cslab
>>> data = cslab.load("data/demo")  # doctest: +SKIP
>>> monthly = cslab.panel(data)  # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version

from cslab.data import CSData, load, load_customers, panel, validate
from cslab.errors import CSLabError, DataValidationError, StatisticalWarning

try:
    __version__ = version("cslab")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "CSData",
    "load",
    "load_customers",
    "panel",
    "validate",
    "CSLabError",
    "DataValidationError",
    "StatisticalWarning",
    "__version__",
]
