"""Evaluation: top-1 accuracy and cost counting (parameters, MACs)."""

from sigmab.eval.counting import MAC_COUNTERS, ModuleCost, Profile, count_params, profile_model, register_mac_counter
from sigmab.eval.evaluate import EvalResult, evaluate

__all__ = [
    "MAC_COUNTERS",
    "EvalResult",
    "ModuleCost",
    "Profile",
    "count_params",
    "evaluate",
    "profile_model",
    "register_mac_counter",
]
