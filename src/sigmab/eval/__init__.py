"""Evaluation: top-1 accuracy and cost counting (parameters, MACs)."""

from sigmab.eval.counting import MAC_COUNTERS, ModuleCost, Profile, count_params, profile_model, register_mac_counter
from sigmab.eval.evaluate import EvalResult, evaluate
from sigmab.eval.report import BYTES_PER_WEIGHT, REPORT_FIELDS, RESULT_FIELDS, ModelReport

__all__ = [
    "BYTES_PER_WEIGHT",
    "MAC_COUNTERS",
    "REPORT_FIELDS",
    "RESULT_FIELDS",
    "ModelReport",
    "EvalResult",
    "ModuleCost",
    "Profile",
    "count_params",
    "evaluate",
    "profile_model",
    "register_mac_counter",
]
