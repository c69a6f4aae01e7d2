import pytest

from sigmab.errors import ConfigError
from sigmab.graph import decompose
from sigmab.graph.groups import channel_groups
from tests.helpers import tiny_resnet


def test_inner_groups_per_block_and_one_stream_group_per_stage() -> None:
    dec = decompose(tiny_resnet(depth=20))  # 3 stages x 3 blocks, widths 8/16/32
    inner = channel_groups(dec, "inner")
    assert [g.name for g in inner][:2] == ["layer1.0:conv1", "layer1.1:conv1"] and len(inner) == 9
    assert all(g.kind == "inner" and g.producers == (dec.blocks[g.blocks[0]].conv1,) for g in inner)
    streams = [g for g in channel_groups(dec, "all") if g.kind == "stream"]
    assert [(g.name, g.size, g.blocks) for g in streams] == [
        ("stage1", 8, (0, 1, 2)), ("stage2", 16, (3, 4, 5)), ("stage3", 32, (6, 7, 8))]
    # the stem writes stage 1; every block of a stage writes its stream; stage 3 feeds the classifier
    assert streams[0].producers[0] is dec.stem[0] and len(streams[0].producers) == 4
    assert streams[2].consumers[-1] is dec.head.linear
    # blocks 0-3 read stage 1 (block 3 opens stage 2 from stage 1's stream)
    assert streams[0].consumers == tuple(dec.blocks[b].conv1 for b in range(4))
    with pytest.raises(ConfigError, match="unknown pruning scope 'outer'"):
        channel_groups(dec, "outer")
