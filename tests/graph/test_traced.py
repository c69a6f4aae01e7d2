"""Channel groups read off a torch.fx trace equal what the hand-written block handlers know, block by block, on the
ResNet (CIFAR option A and B, torchvision basic and bottleneck) and MobileNetV2 families."""

import pytest
import torch
from torch import nn

from sigmab.graph import block_handler, decompose
from sigmab.graph.traced import TraceError, trace_groups
from sigmab.models.cifar_resnet import ZeroPadShortcut
from tests.helpers import tiny_imagenet_resnet, tiny_mobilenet_v2, tiny_resnet

MODELS = {"cifar-A": lambda: tiny_resnet(), "cifar-B": lambda: tiny_resnet(shortcut="B"),
          "resnet18": lambda: tiny_imagenet_resnet(18), "resnet50": lambda: tiny_imagenet_resnet(50),
          "mobilenet_v2": tiny_mobilenet_v2}


def _ids(modules) -> set[int]:
    return {id(m) for m in modules}


@pytest.mark.parametrize("name", MODELS)
def test_traced_groups_equal_the_hand_written_handlers_on_every_block(name: str) -> None:
    dec = decompose(MODELS[name]())
    seen = {"projections": 0, "depthwise on the input": 0, "inner groups": 0}
    for index, block in enumerate(dec.blocks):
        where = f"{name} {dec.block_names[index]}"
        handler, traced = block_handler(block), trace_groups(block, shortcut_types=(ZeroPadShortcut,))
        known = handler.inner_layers(block)
        assert sorted(handler.inner_groups(block).values()) == sorted(traced.inner.values()), where
        by_producers = {frozenset(_ids(producers)): group for group, producers in traced.producers.items()}
        for group, (producers, consumers) in known.items():
            mine = by_producers[frozenset(_ids(producers))]  # the same layers write the group...
            assert _ids(traced.consumers[mine]) == _ids(consumers), where  # ...and read it
            assert traced.activations[mine] is handler.inner_activations(block)[group], where
        out_producers, in_consumers = handler.stream_layers(block)
        assert _ids(traced.out_producers) == _ids(out_producers), where
        assert _ids(traced.in_consumers) == _ids(in_consumers), where
        assert _ids(traced.in_activations) == _ids(handler.in_activations(block)), where
        seen["projections"] += len(traced.out_producers) > 1
        seen["depthwise on the input"] += bool(traced.in_activations)
        seen["inner groups"] += len(traced.inner)
    # the cases that make the comparison bite are there
    assert seen["inner groups"] >= len(dec.blocks) - 2  # all but an unexpanded block and a last conv
    assert seen["projections"] == {"cifar-A": 0, "cifar-B": 2, "resnet18": 3, "resnet50": 4}.get(name, 0)
    assert (seen["depthwise on the input"] > 0) == (name == "mobilenet_v2")


class _Concat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], 1)


class _Grouped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1, groups=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_an_operation_the_rules_do_not_cover_is_one_error_naming_it() -> None:
    with pytest.raises(TraceError, match=r"_Concat node 'cat': call_function 'cat' on a channel path"):
        trace_groups(_Concat())
    with pytest.raises(TraceError, match=r"grouped Conv2d \(groups=2\) is not followed yet"):
        trace_groups(_Grouped())
