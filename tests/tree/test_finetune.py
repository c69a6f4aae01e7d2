from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sigmab.errors import ConfigError
from sigmab.tree import ConvertConfig, load_tree
from sigmab.tree import finetune as finetune_module
from sigmab.tree.finetune import FinetuneConfig, finetune
from sigmab.tree.pipeline import convert_checkpoint
from tests.helpers import copy_tree_folder, digits_resnet_checkpoint

CFG = FinetuneConfig(soft_epochs=1, hard_epochs=1, batch_size=64, lr=0.02, distill_weight=0.5, router_lr=0.01,
                     train_backbone=True, threads=1)


@pytest.fixture(scope="module")
def tree_dir(tmp_path_factory) -> Path:
    checkpoint = digits_resnet_checkpoint(tmp_path_factory.mktemp("dense"), epochs=2)
    out = tmp_path_factory.mktemp("tree") / "t"
    convert_checkpoint(checkpoint, dataset="digits", out=out,
                       cfg=ConvertConfig(depth=1, widths=[0.5], calib_size=300, min_leaf_samples=16))
    return out


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_resumed_finetune_equals_an_uninterrupted_one(tree_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, amp: str) -> None:
    cfg = replace(CFG, amp=amp)
    straight, _ = finetune(copy_tree_folder(tree_dir, tmp_path / "a"), cfg, progress=False)
    real_eval = finetune_module.evaluate_tree
    calls = {"n": 0}

    def killed_after_first_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # 1: converted routing, 2: after epoch 1, 3: after epoch 2 -> dies before saving it
            raise KeyboardInterrupt
        return real_eval(*args, **kwargs)

    monkeypatch.setattr(finetune_module, "evaluate_tree", killed_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        finetune(copy_tree_folder(tree_dir, tmp_path / "b"), cfg, progress=False)
    monkeypatch.undo()
    resumed, _ = finetune(tmp_path / "b", cfg, resume=True, progress=False)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    reloaded, _ = load_tree(tmp_path / "b")
    assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), resumed.state_dict().values()))


def test_frozen_parts_stay_at_their_converted_values(tree_dir: Path, tmp_path: Path) -> None:
    cfg = FinetuneConfig(soft_epochs=1, hard_epochs=0, batch_size=64, threads=1)  # defaults: frozen backbone, routers
    start, _ = load_tree(tree_dir)
    tuned, result = finetune(copy_tree_folder(tree_dir, tmp_path / "t"), cfg, progress=False)
    for part in ("backbone", "routers"):
        for (name, a), b in zip(getattr(start, part).state_dict().items(), getattr(tuned, part).state_dict().values()):
            assert torch.equal(a, b), f"{part}.{name}"
    assert any(not torch.equal(a, b) for a, b in zip(start.nodes.state_dict().values(),
                                                      tuned.nodes.state_dict().values()))
    assert result.n_samples == 359


def _router_state(tree_dir: Path) -> dict[str, torch.Tensor]:
    tree, _ = load_tree(tree_dir)
    return {k: v.clone() for k, v in tree.routers.state_dict().items()}


def test_straight_through_trains_the_routers_in_the_hard_phase(tree_dir: Path, tmp_path: Path) -> None:
    start = _router_state(tree_dir)
    common = dict(soft_epochs=0, hard_epochs=1, batch_size=64, lr=0.02, router_lr=0.05, anchor_weight=0.0,
                  balance_weight=0.0, threads=1)
    finetune(copy_tree_folder(tree_dir, tmp_path / "none"), FinetuneConfig(**common), progress=False)
    for key, value in _router_state(tmp_path / "none").items():
        assert torch.equal(value, start[key]), key  # hard routing alone gives the routers no gradient
    finetune(copy_tree_folder(tree_dir, tmp_path / "st"), FinetuneConfig(**common, router_gradient="straight-through"),
             progress=False)
    moved = _router_state(tmp_path / "st")
    assert any(not torch.equal(moved[k], start[k]) for k in start)
    with pytest.raises(ConfigError, match="needs router_lr > 0"):
        FinetuneConfig(router_gradient="straight-through")
    with pytest.raises(ConfigError, match="router_gradient must be one of none, straight-through"):
        FinetuneConfig(router_gradient="gumbel", router_lr=0.1)


def test_the_balance_term_reads_the_routers_at_its_own_temperature(tree_dir: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A collapsed straight-through router is saturated at temperature_end 0.1: the balance term then reads it
    at a warmer temperature, where its softmax (and so its gradient) is not flat."""
    seen: list[float] = []
    real = finetune_module.balance_loss

    def recording(probs, targets):
        seen.append(float(torch.stack([p.detach().max(1).values.mean() for p in probs.values()]).mean()))
        return real(probs, targets)

    monkeypatch.setattr(finetune_module, "balance_loss", recording)
    common = dict(soft_epochs=0, hard_epochs=1, batch_size=64, lr=0.02, router_lr=0.05, anchor_weight=0.0,
                  router_gradient="straight-through", threads=1)
    finetune(copy_tree_folder(tree_dir, tmp_path / "cold"), FinetuneConfig(**common), progress=False)
    cold, seen[:] = list(seen), []
    finetune(copy_tree_folder(tree_dir, tmp_path / "warm"), FinetuneConfig(**common, balance_temperature=2.0),
             progress=False)
    assert cold and seen and sum(seen) / len(seen) < sum(cold) / len(cold) - 0.05
    with pytest.raises(ConfigError, match="balance_temperature must be >= 0"):
        FinetuneConfig(balance_temperature=-1.0)
