import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sigmab.cli import main
from sigmab.export import OnnxGraphs, OnnxTreeRunner, export_model
from sigmab.export.quantize import QuantisationError, float_weight_ops, quantize_graph, weight_bytes
from sigmab.inputs import calibration_images
from sigmab.routing import path_keys
from sigmab.tree.routes import load_routes
from sigmab.tree.spec import load_tree
from tests.helpers import digits_tree_folder, tiny_mobilenet_v2, tiny_resnet

pytestmark = pytest.mark.slow  # ONNX export and quantisation of a small tree (about a minute)

pytest.importorskip("onnxruntime", reason="the [export] extra (installed by `make test`) is needed")


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("int8")
    checkpoint, tree = digits_tree_folder(root, epochs=2)
    int8 = root / "int8"
    assert main(["export", str(tree), "--out", str(int8), "--int8", "--no-paths", "--no-progress"]) == 0
    return {"checkpoint": checkpoint, "tree": tree, "int8": int8, "root": root}


def _test_images(tree_dir: Path, n: int = 300) -> torch.Tensor:
    _, spec = load_tree(tree_dir)
    return calibration_images("digits", None, spec.dense_meta, size=n, seed=7)  # not the calibration draw (seed 0)


def test_int8_units_track_fp32_within_tolerance(folders) -> None:
    """Each quantised unit's output stays within 5% (mean absolute error over mean magnitude) of PyTorch's."""
    tree, _ = load_tree(folders["tree"])
    graphs = OnnxGraphs(folders["int8"])
    x = _test_images(folders["tree"])
    with torch.no_grad():
        h = tree.backbone(x)
        pairs = {"backbone": (x, h), "n0": (h, tree.nodes["n0"](h)), "n1": (h, tree.nodes["n1"](h))}
        pairs["n01"] = (pairs["n0"][1], tree.nodes["n01"](pairs["n0"][1]))
    for name, (inputs, expected) in pairs.items():
        got = graphs.run(name, inputs.numpy())
        error = np.abs(got - expected.numpy()).mean() / np.abs(expected.numpy()).mean()
        assert error < 0.05, (name, error)
    manifest = graphs.manifest
    assert manifest["precision"] == "int8" and manifest["routers"] == "margin"
    for graph in manifest["graphs"].values():  # int8 weights: well under half of the fp32 bytes, beyond the router
        if graph["kind"] != "router":
            assert graph["weight_bytes"] < 0.4 * graph["fp32_weight_bytes"]
        assert not float_weight_ops(folders["int8"] / graph["files"]["onnx"])


def test_int8_routes_equal_fp32_away_from_the_decision_boundary(folders) -> None:
    tree, _ = load_tree(folders["tree"])
    x = _test_images(folders["tree"])
    with torch.no_grad():
        h = tree.backbone(x)
        logits, leaves = tree.forward_hard(x)
        root = tree.routers["r"](h)
        h0, h1 = tree.nodes["n0"](h), tree.nodes["n1"](h)
        second = torch.where(root.argmax(1) == 0, *(r(hh)[:, 1] - r(hh)[:, 0] for r, hh in
                                                    ((tree.routers["r0"], h0), (tree.routers["r1"], h1))))
    margins = torch.minimum((root[:, 1] - root[:, 0]).abs(), second.abs())
    far = margins > margins.quantile(0.25)  # the three quarters of inputs farthest from any router's boundary
    _, int8_leaves = OnnxTreeRunner(folders["int8"]).predict(x.numpy())
    assert (torch.from_numpy(int8_leaves)[far] == leaves[far]).all()


def test_eval_of_an_int8_export_reports_agreement_with_fp32(folders, capsys) -> None:
    assert main(["eval", str(folders["int8"]), "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    fp32 = report["fp32"]
    assert report["precision"] == "int8" and report["n_samples"] == 359
    assert fp32["route_agreement"] >= 0.95 and fp32["prediction_agreement"] >= 0.9
    assert abs(report["top1"] - fp32["top1"]) < 3.0
    assert sum(row["share"] for row in report["leaves"]) == pytest.approx(1.0, abs=1e-3)
    assert report["stored_bytes"] == sum(report["graph_bytes"].values())
    assert report["stored_bytes"] > report["active_bytes_mean"]


def test_edge_sim_counts_the_int8_files_bytes(folders, capsys) -> None:
    routes, out = folders["root"] / "routes.npz", folders["root"] / "edge.json"
    assert main(["eval", str(folders["tree"]), "--save-routes", str(routes), "--no-progress"]) == 0
    assert main(["edge-sim", "--tree", str(folders["tree"]), "--routes", str(routes), "--export",
                 str(folders["int8"]), "--device", "ethos-u55-mcu", "--orders", "shuffled", "--sram-sweep", "0",
                 "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    rows = {r["workload"].split(":")[0]: r for r in data["sweep"]}
    manifest = json.loads((folders["int8"] / "export.json").read_text())
    assert rows["int8-export"]["precision"] == "int8"
    assert rows["int8-export"]["stored_bytes"] == sum(g["weight_bytes"] for g in manifest["graphs"].values())
    # nothing on chip: every input streams exactly the file bytes of the units on its path
    saved, sizes = load_routes(routes), {name: g["weight_bytes"] for name, g in manifest["graphs"].items()}
    per_leaf = [sizes["backbone"] + sum(sizes[u] for u in sum(path_keys(leaf), [])) for leaf in saved.leaves]
    expected = np.mean([per_leaf[i] for i in saved.leaf_ids])
    assert rows["int8-export"]["offchip_bytes"] == pytest.approx(expected, rel=1e-9)


def test_missing_calibration_data_is_one_clear_error(folders, tmp_path, capsys) -> None:
    assert main(["export", "--checkpoint", str(folders["checkpoint"]), "--out", str(tmp_path / "a"), "--int8"]) == 2
    assert "pass --dataset" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(folders["checkpoint"]), "--out", str(tmp_path / "b"), "--int8",
                 "--dataset", "cifar10", "--data-root", str(tmp_path / "nowhere.npz")]) == 2
    assert "nowhere.npz" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # failed before any folder was made


def test_an_operator_left_in_float_is_one_clear_error(tmp_path, monkeypatch) -> None:
    export_model(tiny_resnet().eval(), torch.randn(2, 3, 32, 32), tmp_path / "fp32")
    fp32 = tmp_path / "fp32" / "model.onnx"
    assert float_weight_ops(fp32)  # every Conv of the fp32 graph has float weights
    import onnxruntime.quantization as q

    monkeypatch.setattr(q, "quantize_static", lambda src, dst, *a, **k: shutil.copy(src, dst))  # quantises nothing
    with pytest.raises(QuantisationError, match="left .* in float"):
        quantize_graph(fp32, tmp_path / "model.int8.onnx", np.zeros((4, 3, 32, 32), np.float32), input_name="x",
                       batch_size=2)
    assert not (tmp_path / "model.int8.onnx").exists()
    assert weight_bytes(fp32) > 4 * sum(p.numel() for p in tiny_resnet().parameters()) * 0.99


def test_a_mobilenet_v2_quantises_every_conv_depthwise_included(tmp_path) -> None:
    """The edge model: every Conv (the depthwise ones too) gets int8 weights and the output tracks fp32."""
    model = tiny_mobilenet_v2().eval()
    torch.manual_seed(1)
    calib, x = torch.rand(64, 3, 32, 32), torch.rand(16, 3, 32, 32)
    export_model(model, calib[:2], tmp_path / "fp32")
    fp32 = tmp_path / "fp32" / "model.onnx"
    quantize_graph(fp32, tmp_path / "model.int8.onnx", calib.numpy(), input_name="x", batch_size=16)
    import onnx
    import onnxruntime as ort

    graph = onnx.load(str(tmp_path / "model.int8.onnx")).graph
    depthwise = [n for n in graph.node if n.op_type == "Conv" and any(a.name == "group" and a.i > 1
                                                                       for a in n.attribute)]
    assert len(depthwise) == 17  # one per inverted residual, all kept as Conv over dequantised int8 weights
    assert not float_weight_ops(tmp_path / "model.int8.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.abs(got - expected).mean() / np.abs(expected).mean() < 0.1
    assert weight_bytes(tmp_path / "model.int8.onnx") < 0.4 * weight_bytes(fp32)
    quantize_graph(fp32, tmp_path / "stem.int8.onnx", calib.numpy(), input_name="x", batch_size=16,
                   keep_float=[0], method="percentile")
    left = float_weight_ops(tmp_path / "stem.int8.onnx")  # the stem only: kept in fp32 on request, not an error
    assert len(left) == 1 and left[0].startswith("Conv")
    assert weight_bytes(tmp_path / "stem.int8.onnx") > weight_bytes(tmp_path / "model.int8.onnx")


def test_keep_float_leaves_the_stem_and_classifier_in_fp32_only_where_a_graph_holds_them(folders, tmp_path,
                                                                                        capsys) -> None:
    out = tmp_path / "int8-float-ends"
    assert main(["export", str(folders["tree"]), "--out", str(out), "--int8", "--int8-keep-float", "stem",
                 "classifier", "--no-progress"]) == 0
    manifest = json.loads((out / "export.json").read_text())
    plain = json.loads((folders["int8"] / "export.json").read_text())["graphs"]
    for name, graph in manifest["graphs"].items():
        left = float_weight_ops(out / graph["files"]["onnx"])
        assert left == graph["float_layers"]
        expected = {"backbone": 1, "router": 0}.get(graph["kind"], 2 if graph["kind"] == "path" else None)
        if graph["kind"] == "node":
            expected = 1 if name in manifest["leaves"] else 0
        assert len(left) == expected, name
        if name in plain and expected:  # an fp32 layer stores 4 bytes per weight instead of 1
            assert graph["weight_bytes"] > plain[name]["weight_bytes"]
    assert manifest["quantization"]["keep_float"] == ["stem", "classifier"]
    capsys.readouterr()
    assert main(["eval", str(out), "--no-progress"]) == 0
    assert "kept in fp32: stem, classifier" in capsys.readouterr().out
    assert main(["export", str(folders["tree"]), "--out", str(tmp_path / "x"), "--int8-keep-float", "stem"]) == 2


def test_an_unknown_calibration_method_is_one_clear_error() -> None:
    from sigmab.errors import ConfigError
    from sigmab.export.quantize import QuantizeConfig

    with pytest.raises(ConfigError, match="choose one of minmax, percentile, entropy"):
        QuantizeConfig(method="mse")


def test_onnxruntime_fuses_every_convolution_of_the_default_int8_graph(tmp_path) -> None:
    """On x86 the default (uint8 activations) leaves no convolution in float after onnxruntime's optimisation;
    int8 activations leave some (the reason the default is what it is)."""
    import platform

    import onnx
    import onnxruntime as ort

    from benchmarks.int8_graph import op_counts
    from sigmab.export.quantize import activation_type

    if activation_type() != "uint8":
        pytest.skip(f"the default activation type on {platform.machine()} is int8")
    x = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    export_model(tiny_resnet(8), x[:2], tmp_path / "fp32")
    src = next((tmp_path / "fp32").glob("*.onnx"))
    fused = {}
    name = onnx.load(str(src)).graph.input[0].name
    for activations in ("auto", "int8"):
        quantize_graph(src, tmp_path / f"{activations}.onnx", x.numpy(), input_name=name, batch_size=32,
                       activations=activations)
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(tmp_path / f"{activations}-opt.onnx")
        ort.InferenceSession(str(tmp_path / f"{activations}.onnx"), options, providers=["CPUExecutionProvider"])
        fused[activations] = op_counts(tmp_path / f"{activations}-opt.onnx")
    assert fused["auto"].get("Conv", 0) == 0 and fused["auto"]["QLinearConv"] == 7  # stem + 3 blocks x 2
    assert fused["int8"].get("Conv", 0) > 0
