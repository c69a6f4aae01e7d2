"""A CIFAR ResNet published in the projection-shortcut layout (option B: ``downsample.0/1`` keys, an ``fc`` head, a
bare state_dict without sigmab metadata) goes through every tool as an option-A file does, with no key edited."""

import json
from pathlib import Path

import pytest
import torch

from sigmab.cli import main
from sigmab.data import load_split
from sigmab.eval import evaluate
from sigmab.models import load_model
from tests.data.fixtures import write_cifar_npz
from tests.helpers import tiny_resnet

pytestmark = pytest.mark.slow  # every command once on a small model (about a minute)


def published_layout(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s weights under the torchvision-style names that option-B CIFAR ResNets are published with."""
    sd = {}
    for key, value in model.state_dict().items():
        key = key.replace(".shortcut.", ".downsample.")
        sd["fc." + key[len("linear."):] if key.startswith("linear.") else key] = value
    return sd


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layout_b")
    data = root / "c10.npz"
    write_cifar_npz(data, n_train=120, n_test=40)
    model = tiny_resnet(8, shortcut="B")
    checkpoint = root / "resnet8_b.pth"
    torch.save(published_layout(model), checkpoint)
    return {"root": root, "data": data, "checkpoint": checkpoint}


def _cli(*argv: str) -> None:
    assert main([*argv, "--no-progress"] if argv[0] not in ("dispatch", "edge-sim", "export") else list(argv)) == 0


def _json_out(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_the_layout_is_recognised_and_evaluates_like_the_model(files, capsys) -> None:
    loaded = load_model(files["checkpoint"], arch="resnet8")
    assert loaded.meta.arch_kwargs == {"shortcut": "B", "widths": [8, 16, 32]}  # both read off the file
    assert loaded.meta.std == (0.2023, 0.1994, 0.2010)  # the statistics this layout's 10-class models use
    reference = tiny_resnet(8, shortcut="B")
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), reference(x), rtol=0, atol=0)
    test = load_split("cifar10", "test", root=files["data"])
    expected = evaluate(reference, test.loader(batch_size=16, mean=loaded.meta.mean, std=loaded.meta.std),
                        progress=False)
    _cli("eval", "--checkpoint", str(files["checkpoint"]), "--arch", "resnet8", "--dataset", "cifar10",
         "--data-root", str(files["data"]), "--json")
    report = _json_out(capsys)
    assert report["top1"] == round(expected.top1, 4) and report["params"] == sum(
        p.numel() for p in reference.parameters())


def test_convert_at_full_width_gives_the_dense_output_and_finetune_runs(files, capsys) -> None:
    tree = files["root"] / "tree"
    _cli("convert", "--checkpoint", str(files["checkpoint"]), "--arch", "resnet8", "--dataset", "cifar10",
         "--data-root", str(files["data"]), "--out", str(tree), "--depth", "2", "--widths", "[1.0, 1.0]",
         "--residual-widths", "[1.0, 1.0]", "--calib-size", "100", "--min-leaf-samples", "8")
    from sigmab.tree.spec import load_tree

    net, spec = load_tree(tree)
    assert spec.dense_meta.arch_kwargs["shortcut"] == "B"
    dense = load_model(files["checkpoint"], arch="resnet8")
    x = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        for leaf in net.leaves:
            torch.testing.assert_close(net.forward_path(x, leaf), dense(x), atol=1e-5, rtol=1e-5)
    _cli("finetune", str(tree), "--soft-epochs", "1", "--hard-epochs", "0", "--batch-size", "32")
    capsys.readouterr()
    _cli("eval", str(tree), "--json", "--save-routes", str(files["root"] / "routes.npz"))
    assert _json_out(capsys)["n_samples"] == 40
    out = files["root"] / "edge.json"
    _cli("edge-sim", "--tree", str(tree), "--routes", str(files["root"] / "routes.npz"), "--checkpoint",
         str(files["checkpoint"]), "--arch", "resnet8", "--out", str(out))
    assert json.loads(out.read_text())


@pytest.mark.parametrize("criterion", ["l1", "fpgm", "hrank"])
def test_prune_keeps_the_layout_and_reloads_to_the_same_network(files, criterion) -> None:
    from sigmab.prune.spec import load_pruned

    out = files["root"] / f"pruned-{criterion}"
    _cli("prune", "--checkpoint", str(files["checkpoint"]), "--arch", "resnet8", "--dataset", "cifar10",
         "--data-root", str(files["data"]), "--out", str(out), "--criterion", criterion, "--scope", "all",
         "--keep-ratio", "0.5", "--calib-size", "60", "--epochs", "0")
    net, spec = load_pruned(out)
    assert spec.dense_meta.arch_kwargs["shortcut"] == "B"
    projection = net.layer2[0].shortcut[0] if hasattr(net, "layer2") else None
    dense_params = sum(p.numel() for p in load_model(files["checkpoint"], arch="resnet8").parameters())
    assert sum(p.numel() for p in net.parameters()) < 0.5 * dense_params
    if projection is not None:
        assert projection.kernel_size == (1, 1) and projection.out_channels < 16


def test_nested_dispatch_and_int8_export_run_on_the_layout(files, capsys) -> None:
    pytest.importorskip("onnxruntime", reason="the [export] extra (installed by `make test`) is needed")
    common = ["--dataset", "cifar10", "--data-root", str(files["data"])]
    nested = files["root"] / "nested"
    _cli("nested", "--checkpoint", str(files["checkpoint"]), "--arch", "resnet8", "--out", str(nested),
         "--epochs", "1", "--batch-size", "32", "--calibration-batches", "1", *common)
    capsys.readouterr()
    _cli("eval", str(nested), "--json")
    assert _json_out(capsys)
    dispatch = files["root"] / "dispatch"
    other = files["root"] / "resnet8_b_seed1.pth"
    torch.save(published_layout(tiny_resnet(8, (4, 8, 16), seed=1, shortcut="B")), other)
    _cli("dispatch", str(files["checkpoint"]), str(other), "--arch", "resnet8",
         "--out", str(dispatch), "--population", "4", "--generations", "1", "--epochs", "1", "--val-fraction",
         "0.25", "--no-progress", *common)
    assert (dispatch / "report.json").is_file()
    export = files["root"] / "int8"
    _cli("export", "--checkpoint", str(files["checkpoint"]), "--arch", "resnet8", "--out", str(export), "--int8",
         "--calib-size", "100", "--no-progress", *common)
    capsys.readouterr()
    _cli("eval", str(export), "--json", *common)
    report = _json_out(capsys)
    _cli("eval", "--checkpoint", str(files["checkpoint"]), "--arch", "resnet8", "--json", *common)
    assert report["fp32"]["top1"] == _json_out(capsys)["top1"]  # the export's fp32 source is the dense model
    assert report["precision"] == "int8" and report["fp32"]["prediction_agreement"] >= 0.75
