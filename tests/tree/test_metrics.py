import pytest
import torch

from sigmab.eval import profile_model
from sigmab.tree import cost_summary


def test_active_counts_are_share_weighted_and_stored_counts_everything(sliced) -> None:
    tree = sliced.tree
    share = torch.tensor([0.5, 0.5, 0.0, 0.0])
    summary = cost_summary(tree, (3, 32, 32), share)
    paths = {p["leaf"]: p for p in summary["paths"]}
    assert summary["stored_params"] == sum(p.numel() for p in tree.parameters())
    assert summary["active_params_mean"] == pytest.approx((paths["n00"]["params"] + paths["n01"]["params"]) / 2)
    assert summary["weight_bytes_per_inference"] == pytest.approx(4 * summary["active_params_mean"])
    assert summary["active_params_max"] < summary["stored_params"]
    router_macs = 2 * 8 + 2 * 12  # root router (8 inputs) + r0 (12 inputs): the 2-row maps
    backbone_macs = profile_model(tree.backbone, (3, 32, 32)).macs
    assert paths["n00"]["macs"] > backbone_macs + router_macs


def test_counting_paths_leaves_an_evaluating_tree_in_eval_mode(sliced) -> None:
    tree = sliced.tree.eval()
    cost_summary(tree, (3, 32, 32))
    assert not any(m.training for m in tree.modules())
