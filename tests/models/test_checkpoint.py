from pathlib import Path

import pytest
import torch

from sigmab.errors import CheckpointError
from sigmab.models import ModelMeta, build_model, load_checkpoint, load_model, save_model


def _tiny():
    model = build_model("small_cnn", widths=(4, 8), num_classes=5).eval()
    with torch.no_grad():
        for buf in model.buffers():
            if buf.dtype.is_floating_point:
                buf.uniform_(0.5, 1.5)
    return model


def test_safetensors_round_trip_keeps_outputs_and_metadata(tmp_path: Path) -> None:
    model = _tiny()
    save_model(model, tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.meta == model.meta
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_dataparallel_prefix_and_state_dict_wrapper_are_accepted(tmp_path: Path) -> None:
    model = build_model("small_cnn", num_classes=5).eval()
    sd = {f"module.{k}": v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save({"state_dict": sd, "best_prec1": 50.0}, tmp_path / "ak.th")
    loaded = load_model(tmp_path / "ak.th", arch="small_cnn")
    assert loaded.meta.num_classes == 5  # read off the classifier in the weights
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert load_checkpoint(tmp_path / "ak.th").extra == {"best_prec1": 50.0}


def test_checkpoint_without_metadata_needs_an_architecture(tmp_path: Path) -> None:
    torch.save(_tiny().state_dict(), tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="no model metadata.*--arch"):
        load_model(tmp_path / "bare.pt")


def test_misfit_checkpoint_is_summarised_in_one_error(tmp_path: Path) -> None:
    torch.save(build_model("resnet20").state_dict(), tmp_path / "r20.pt")
    with pytest.raises(CheckpointError, match=r"does not fit resnet32: \d+ missing \(e.g. layer1.3"):
        load_model(tmp_path / "r20.pt", arch="resnet32")
    with pytest.raises(CheckpointError, match=r"wrong shape \(e.g. linear.weight \(10, 64\) vs \(100, 64\)\)"):
        load_model(tmp_path / "r20.pt", arch="resnet20", num_classes=100)


def test_arch_flag_conflicting_with_metadata_is_refused(tmp_path: Path) -> None:
    save_model(_tiny(), tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match="holds a small_cnn model, but --arch resnet20"):
        load_model(tmp_path / "m.safetensors", arch="resnet20")


def test_pickled_module_is_refused_by_weights_only_loading(tmp_path: Path) -> None:
    torch.save(_tiny(), tmp_path / "module.pt")
    with pytest.raises(CheckpointError, match="refused: besides tensors it holds pickled objects") as error:
        load_checkpoint(tmp_path / "module.pt")
    assert "weights_only=False" not in str(error.value)  # no advice to run a possibly malicious file


@pytest.mark.parametrize("name", ["broken.pt", "broken.safetensors"])
def test_corrupt_or_missing_files_name_the_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match=name):
        load_checkpoint(tmp_path / name)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "absent.pt")


@pytest.mark.parametrize("content", [b"hello\n", b"{\"model\": 1}\n", b""])
def test_a_text_file_named_pt_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "notes.pt").write_bytes(content)  # a text file unpickles as garbage opcodes (once a KeyError)
    with pytest.raises(CheckpointError, match="notes.pt: not a readable weights-only torch checkpoint"):
        load_checkpoint(tmp_path / "notes.pt")
    with pytest.raises(CheckpointError, match="notes.pt"):
        load_model(tmp_path / "notes.pt", arch="small_cnn")


def test_weights_holding_inf_or_nan_are_never_written(tmp_path: Path) -> None:
    model = _tiny()
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(CheckpointError, match="refusing to write .*hold inf or NaN"):
        save_model(model, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []  # no file, no temporary left


def test_meta_rejects_inconsistent_normalisation() -> None:
    with pytest.raises(CheckpointError, match="mean/std need 3 values"):
        ModelMeta("x", 10, 3, (32, 32), (0.5,), (0.5,))
    with pytest.raises(CheckpointError, match="malformed model metadata"):
        ModelMeta.from_dict({"arch": "x"})


def test_a_safetensors_file_with_a_broken_metadata_header_is_a_clear_error(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "m.safetensors"), metadata={"sigmab_meta": "{not json"})
    with pytest.raises(CheckpointError, match="header is not valid model metadata"):
        load_checkpoint(tmp_path / "m.safetensors")
