"""Static structured pruning (L1, FPGM, HRank): the baselines SigmaB is measured against."""

from sigmab.prune.plan import PruneConfig, PrunePlan, plan_pruning, prune, solve_keep_ratio
from sigmab.prune.spec import PrunedNet, PrunedSpec, build_pruned, load_pruned, save_pruned

__all__ = ["PruneConfig", "PrunePlan", "PrunedNet", "PrunedSpec", "build_pruned",
           "load_pruned", "plan_pruning", "prune", "save_pruned", "solve_keep_ratio"]
