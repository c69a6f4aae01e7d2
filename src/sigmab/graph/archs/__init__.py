"""One file per architecture family: its decomposition adapter, block handlers and any slicer it needs, registered
on import. A new family is one new file here, imported below; the tests run over every registered family."""

from sigmab.graph.archs import mobilenet_v2, pointnet2, resnet, zoo

__all__ = ["mobilenet_v2", "pointnet2", "resnet", "zoo"]
