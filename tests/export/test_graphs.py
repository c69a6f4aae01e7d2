import numpy as np
import pytest
import torch

from sigmab.errors import CheckpointError, ConfigError
from sigmab.export import OnnxGraphs, OnnxTreeRunner, export_model, export_tree, path_module, read_export_manifest
from sigmab.prune import PruneConfig, prune
from tests.helpers import calibration_batch, captured_fds, tiny_mobilenet_v2, tiny_resnet, tiny_tree

pytestmark = pytest.mark.slow  # exports every unit and path of a tree to ONNX (about 40 s)

pytest.importorskip("onnxruntime", reason="the [export] extra (installed by `make test`) is needed")
TOL = {"atol": 1e-5, "rtol": 1e-5}


@pytest.fixture(scope="module")
def tree():
    return tiny_tree().tree


@pytest.fixture(scope="module")
def exported_with_output(tree, tmp_path_factory):
    """One export of every unit and path, and what the export printed (the slowest step of this file: shared)."""
    folder = tmp_path_factory.mktemp("export")
    with captured_fds() as said:
        export_tree(tree, calibration_batch(4), folder)
    return folder, said[0]


@pytest.fixture(scope="module")
def exported(exported_with_output):
    return exported_with_output[0]


def test_export_is_quiet_and_onnx_files_hold_no_debug_metadata(tree, exported_with_output) -> None:
    import onnx

    folder, said = exported_with_output
    assert "LeafSpec" not in said and "torchvision" not in said
    assert "Expect archive file" not in said  # temporary files keep the .pt2 extension
    model = onnx.load(str(folder / "tree.onnx"))

    def nodes(graph):
        for node in graph.node:
            yield node
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    yield from nodes(attribute.g)

    assert not any(node.metadata_props for node in nodes(model.graph))
    weights = sum(p.numel() * 4 for p in tree.parameters())
    assert (folder / "tree.onnx").stat().st_size < 3 * weights + 100_000  # was 2.2 MB for 36 KB of weights


def test_manifest_lists_every_unit_and_path(tree, exported) -> None:
    manifest = read_export_manifest(exported)
    expected = {"backbone", "tree", *tree.routers.keys(), *tree.nodes.keys(),
                *(f"path-{leaf}" for leaf in tree.leaves)}
    assert set(manifest["graphs"]) == expected
    for graph in manifest["graphs"].values():
        assert all((exported / f).is_file() for f in graph["files"].values())
    assert manifest["graphs"]["path-n10"]["output_shape"] == [4, 10]


def test_every_exported_path_matches_pytorch_in_onnxruntime(tree, exported) -> None:
    graphs = OnnxGraphs(exported)
    x = calibration_batch(5, seed=3)
    for leaf in tree.leaves:
        with torch.no_grad():
            expected = tree.forward_path(x, leaf)
        got = torch.from_numpy(graphs.run(f"path-{leaf}", x.numpy()))
        torch.testing.assert_close(got, expected, **TOL)
    # batch 1 runs through the same graphs (the batch dim is dynamic)
    torch.testing.assert_close(torch.from_numpy(graphs.run("path-n00", x[:1].numpy())),
                               tree.forward_path(x[:1], "n00").detach(), **TOL)


def test_pt2_program_matches_pytorch(tree, exported) -> None:
    program = torch.export.load(exported / "path-n11.pt2")
    x = calibration_batch(3, seed=4)
    torch.testing.assert_close(program.module()(x), path_module(tree, "n11")(x), **TOL)


def test_onnx_router_then_path_reproduces_hard_routing(tree, exported) -> None:
    x = calibration_batch(160)  # the k-means calibration inputs reach every leaf
    with torch.no_grad():
        expected_logits, expected_leaves = tree.forward_hard(x)
    logits, leaves = OnnxTreeRunner(exported).predict(x.numpy())
    assert len(np.unique(leaves)) == 4
    np.testing.assert_array_equal(leaves, expected_leaves.numpy())
    torch.testing.assert_close(torch.from_numpy(logits), expected_logits, **TOL)


def test_conditional_whole_tree_graph_runs_only_the_routed_path(tree, exported) -> None:
    graphs = OnnxGraphs(exported)
    x = calibration_batch(160)[::8]  # 20 inputs spread over the k-means clusters
    with torch.no_grad():
        leaves = {int(tree.forward_hard(x[i : i + 1])[1]) for i in range(len(x))}
        for i in range(len(x)):
            got = torch.from_numpy(graphs.run("tree", x[i : i + 1].numpy()))
            torch.testing.assert_close(got, tree(x[i : i + 1]), **TOL)
    assert len(leaves) >= 2
    assert read_export_manifest(exported)["graphs"]["tree"]["input_shape"][0] == 1


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_dense_and_pruned_models_export_the_same_way(tmp_path, shortcut) -> None:
    dense = tiny_resnet(shortcut=shortcut)
    pruned = prune(dense, PruneConfig(criterion="l1", keep_ratio=0.5, scope="all"))[0]
    x = calibration_batch(3, seed=5)
    for name, model in (("dense", dense), ("pruned", pruned)):
        export_model(model, x, tmp_path / name)
        got = torch.from_numpy(OnnxGraphs(tmp_path / name).run("model", x.numpy()))
        with torch.no_grad():
            torch.testing.assert_close(got, model(x), **TOL)
    with pytest.raises(CheckpointError, match="plain model"):
        OnnxTreeRunner(tmp_path / "dense")


def test_sliced_mobilenet_tree_and_prune_export_like_pytorch(tmp_path) -> None:
    """Depthwise convolutions whose ``groups`` followed the slicing, inverted residuals with and without shortcuts."""
    from sigmab.tree import ConvertConfig, convert

    model = tiny_mobilenet_v2()
    tree = convert(model, calibration_batch(96), ConvertConfig(depth=1, widths=[0.5], residual_widths=[0.75],
                                                                calib_size=96, min_leaf_samples=4)).tree
    x = calibration_batch(96, seed=6)
    with torch.no_grad():  # a random tiny model's k-means centroids nearly coincide: split x at a random direction
        proj = tree.routers["r"].proj
        proj.weight.normal_(generator=torch.Generator().manual_seed(0))
        proj.bias.zero_()
        margin = tree.routers["r"](tree.backbone(x)) @ torch.tensor([-1.0, 1.0])
        proj.bias.copy_(torch.tensor([0.0, -float(margin.median()) - 1e-4]))
    export_tree(tree, calibration_batch(2), tmp_path / "tree", paths=False, conditional=False)
    with torch.no_grad():
        expected_logits, expected_leaves = tree.forward_hard(x)
    logits, leaves = OnnxTreeRunner(tmp_path / "tree").predict(x.numpy())
    np.testing.assert_array_equal(leaves, expected_leaves.numpy())
    assert len(np.unique(leaves)) == 2
    torch.testing.assert_close(torch.from_numpy(logits), expected_logits, **TOL)
    pruned = prune(model, PruneConfig(criterion="fpgm", keep_ratio=0.5, scope="all"))[0]
    export_model(pruned, x[:2], tmp_path / "pruned")
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(OnnxGraphs(tmp_path / "pruned").run("model", x.numpy())),
                                   pruned(x), **TOL)


def test_bad_leaf_and_missing_export_are_clear_errors(tree, tmp_path) -> None:
    with pytest.raises(ConfigError, match="no leaf 'n2'"):
        path_module(tree, "n2")
    with pytest.raises(CheckpointError, match="not a sigmab export folder"):
        OnnxGraphs(tmp_path)
