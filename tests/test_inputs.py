import pytest

from sigmab.data import read_image_folder
from sigmab.errors import ConfigError
from sigmab.inputs import calibration_images, check_classes
from sigmab.models import build_model
from tests.data.fixtures import write_image_folder


def test_image_folder_class_count_must_match_the_model(tmp_path) -> None:
    write_image_folder(tmp_path)
    model = build_model("small_cnn", num_classes=3, in_channels=3, input_size=(16, 16), mean=(0.5,) * 3,
                        std=(0.25,) * 3, widths=[4, 4, 4])
    with pytest.raises(ConfigError, match="the model has 3 classes; imagefolder-16 at .* has 2"):
        check_classes(model.meta, read_image_folder(tmp_path, "train", size=16), "imagefolder-16")
    with pytest.raises(ConfigError, match="the model has 3 classes"):
        calibration_images("imagefolder-16", str(tmp_path), model.meta, size=2, seed=0)


def test_calibration_images_are_a_seeded_preprocessed_sample(tmp_path) -> None:
    write_image_folder(tmp_path)
    model = build_model("small_cnn", num_classes=2, in_channels=3, input_size=(16, 16), mean=(0.5,) * 3,
                        std=(0.25,) * 3, widths=[4, 4, 4])
    a = calibration_images("imagefolder-16", str(tmp_path), model.meta, size=4, seed=0)
    assert a.shape == (4, 3, 16, 16) and a.equal(calibration_images("imagefolder-16", str(tmp_path), model.meta,
                                                                      size=4, seed=0))
    with pytest.raises(ConfigError, match="calib_size 7 exceeds the 6 training images"):
        calibration_images("imagefolder-16", str(tmp_path), model.meta, size=7, seed=0)
