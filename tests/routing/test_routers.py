"""Router kinds: recorded in tree.json, rebuilt from it; a new kind needs only a registered class."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from sigmab.errors import ConfigError
from sigmab.routing import (
    CosineRouter,
    MarginLinear,
    RouterModule,
    RouterSpec,
    build_router,
    choose_branch,
    margin_form,
    pooled,
    register_router,
    router_kinds,
)
from sigmab.tree import load_tree, save_tree
from tests.helpers import tiny_tree


@register_router
class _TwoLayerRouter(RouterModule):
    """A stand-in for a trained router kind with settings: pooled features -> hidden -> 2 logits."""

    kind = "test-two-layer"

    def __init__(self, in_channels: int, hidden: int = 5) -> None:
        super().__init__(in_channels)
        self.hidden = hidden
        self.net = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def settings(self) -> dict:
        return {"hidden": self.hidden}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(pooled(x))


def test_spec_round_trip_and_format_one_entries() -> None:
    spec = RouterSpec("test-two-layer", 12, {"hidden": 7})
    assert RouterSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    assert RouterSpec.from_json(16) == RouterSpec("cosine", 16, {})  # tree.json format 1: input channels only
    router = build_router(spec)
    assert isinstance(router, _TwoLayerRouter) and router.hidden == 7 and router.spec() == spec
    assert "cosine" in router_kinds() and isinstance(build_router(RouterSpec("cosine", 3)), CosineRouter)
    with pytest.raises(ConfigError, match="unknown router kind 'nope'"):
        build_router(RouterSpec("nope", 3))
    with pytest.raises(ValueError, match="already registered"):
        register_router(_TwoLayerRouter)


def test_a_new_router_kind_is_saved_and_reloaded_through_tree_json(tmp_path: Path) -> None:
    conversion = tiny_tree()
    tree, spec = conversion.tree, conversion.spec
    torch.manual_seed(3)
    for key in list(tree.routers):
        tree.routers[key] = _TwoLayerRouter(spec.routers[key].in_channels, hidden=4)
        spec.routers[key] = tree.routers[key].spec()
    save_tree(tree, spec, tmp_path)
    entry = json.loads((tmp_path / "tree.json").read_text())["routers"]["r0"]
    assert entry == {"kind": "test-two-layer", "in_channels": spec.routers["r0"].in_channels,
                     "settings": {"hidden": 4}}
    reloaded, _ = load_tree(tmp_path)
    x = torch.randn(24, 3, 32, 32)
    with torch.no_grad():
        a, leaves_a = tree.eval().forward_hard(x)
        b, leaves_b = reloaded.forward_hard(x)
    assert isinstance(reloaded.routers["r1"], _TwoLayerRouter)
    assert torch.equal(leaves_a, leaves_b)
    torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("kind", router_kinds())
def test_margin_form_keeps_every_branch_and_the_logit_difference(kind) -> None:
    torch.manual_seed(0)
    router = build_router(RouterSpec(kind, 8)).eval()
    for p in router.parameters():
        p.data.normal_()
    h = torch.randn(64, 8, 4, 4)
    with torch.no_grad():
        logits, folded = router(h), margin_form(router)(h)
    assert (folded[:, 0] == 0).all()
    torch.testing.assert_close(folded[:, 1], logits[:, 1] - logits[:, 0], atol=1e-5, rtol=1e-5)
    assert torch.equal(choose_branch(folded), choose_branch(logits))
    assert all(not isinstance(m, MarginLinear) for m in router.modules())  # the router itself is unchanged
