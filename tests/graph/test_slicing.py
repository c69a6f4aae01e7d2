import pytest
import torch
from torch import nn

from sigmab.graph import IndexShortcut, channel_map, slice_layer


def test_conv_bn_linear_slices_copy_exactly_the_kept_weights() -> None:
    conv, bn, lin = nn.Conv2d(4, 6, 3, bias=True), nn.BatchNorm2d(6), nn.Linear(6, 3)
    bn.running_mean.uniform_()
    inp, out = torch.tensor([0, 2, 3]), torch.tensor([1, 4])
    c = slice_layer(conv, in_idx=inp, out_idx=out)
    assert (c.in_channels, c.out_channels) == (3, 2)
    torch.testing.assert_close(c.weight, conv.weight[out][:, inp], rtol=0, atol=0)
    torch.testing.assert_close(c.bias, conv.bias[out], rtol=0, atol=0)
    b = slice_layer(bn, out_idx=out)
    torch.testing.assert_close(b.running_mean, bn.running_mean[out], rtol=0, atol=0)
    li = slice_layer(lin, in_idx=out)
    torch.testing.assert_close(li.weight, lin.weight[:, out], rtol=0, atol=0)
    assert li.out_features == 3 and c.weight.data_ptr() != conv.weight.data_ptr()


def test_index_shortcut_equals_option_a_on_the_zeroed_dense_input() -> None:
    x = torch.randn(2, 4, 6, 6)
    for inp in (torch.tensor([0, 2, 3]), torch.tensor([0, 3])):
        out = torch.tensor([1, 2, 4, 5, 7])
        zeroed = torch.zeros_like(x)
        zeroed[:, inp] = x[:, inp]
        dense = torch.nn.functional.pad(zeroed[:, :, ::2, ::2], (0, 0, 0, 0, 2, 2))  # option A, 4 -> 8 channels
        sliced = IndexShortcut(channel_map(inp, out, offset=2), stride=2)(x[:, inp])
        torch.testing.assert_close(sliced, dense[:, out], rtol=0, atol=0)
    assert channel_map(torch.tensor([0, 2, 3]), torch.tensor([1, 2, 4, 5, 7]), offset=2).tolist() == [-1, 0, 1, 2, -1]


def test_depthwise_conv_keeps_one_channel_set_and_its_groups_follow() -> None:
    conv = nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False)
    keep = torch.tensor([0, 3, 4])
    sliced = slice_layer(conv, in_idx=keep, out_idx=keep)
    assert (sliced.in_channels, sliced.out_channels, sliced.groups) == (3, 3, 3)
    torch.testing.assert_close(sliced.weight, conv.weight[keep], rtol=0, atol=0)
    x = torch.randn(2, 6, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(sliced(x[:, keep]), conv(x)[:, keep], rtol=1e-6, atol=1e-6)
    assert slice_layer(conv, out_idx=keep).groups == 3  # one side given: the other follows
    one = slice_layer(conv, in_idx=keep[1:2], out_idx=keep[1:2])  # one channel left: groups 1, still depthwise
    torch.testing.assert_close(one.weight, conv.weight[keep[1:2]], rtol=0, atol=0)
    with pytest.raises(ValueError, match="same channels"):
        slice_layer(conv, in_idx=keep, out_idx=torch.tensor([1, 2, 5]))
    with pytest.raises(ValueError, match="same number of output channels"):  # grouped, not depthwise: see below
        slice_layer(nn.Conv2d(6, 6, 3, groups=2), out_idx=keep)


def test_a_grouped_conv_slice_equals_the_dense_conv_with_dropped_channels_zeroed() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 12, 3, padding=1, groups=4, bias=True)
    in_idx = torch.tensor([1, 2, 4, 6])  # one of each group's two inputs
    out_idx = torch.tensor([1, 2, 4, 5, 7, 8, 10, 11])  # two of each group's three outputs
    sliced = slice_layer(conv, in_idx=in_idx, out_idx=out_idx)
    assert (sliced.in_channels, sliced.out_channels, sliced.groups) == (4, 8, 4)
    x = torch.randn(2, 8, 5, 5)
    zeroed = torch.zeros_like(x)
    zeroed[:, in_idx] = x[:, in_idx]
    with torch.no_grad():
        torch.testing.assert_close(sliced(x[:, in_idx]), conv(zeroed)[:, out_idx])
    with pytest.raises(ValueError, match="same number of input channels, at least one, in each group"):
        slice_layer(conv, in_idx=torch.tensor([0, 1, 2, 4]), out_idx=out_idx)
