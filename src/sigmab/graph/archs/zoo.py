"""torchvision and timm models go through the traced family (:class:`sigmab.graph.traced.TracedAdapter`); what this
room adds is the per-channel modules of those libraries the trace must keep whole, named so that importing sigmab
never imports the libraries. Stochastic depth (drop path) zeroes whole samples in training and is the identity in
evaluation: it acts on every channel alike, like a dropout."""

from sigmab.graph.traced import SAME_SPACE_NAMES

SAME_SPACE_NAMES.update({
    "torchvision.ops.stochastic_depth.StochasticDepth",
    "timm.layers.drop.DropPath",
})
