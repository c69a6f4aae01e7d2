import pytest

from sigmab.errors import ConfigError
from sigmab.models import build_model, default_meta, list_models, register_model
from sigmab.models.small_cnn import SmallCNN


def test_registry_lists_the_cifar_family_and_small_cnn() -> None:
    assert {"resnet8", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "small_cnn"} <= set(list_models())


def test_unknown_architecture_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown architecture 'resnet99'.*resnet56"):
        build_model("resnet99")


def test_overrides_split_into_meta_and_arch_kwargs() -> None:
    model = build_model("small_cnn", num_classes=7, mean=(0.1,), std=(0.2,), widths=(4, 8))
    assert model.meta.num_classes == 7 and model.meta.mean == (0.1,) and model.meta.std == (0.2,)
    assert model.meta.arch_kwargs == {"widths": [4, 8]}  # JSON form, as saved
    assert model.classifier.out_features == 7 and model.classifier.in_features == 8


def test_bad_builder_argument_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="bad arguments for architecture 'small_cnn'"):
        build_model("small_cnn", depth=3)


def test_builders_are_keyword_only_and_names_are_unique() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register_model("small_cnn", num_classes=1, in_channels=1, input_size=(1, 1), mean=(0.0,), std=(1.0,))(
            lambda **kw: SmallCNN(**kw))
    with pytest.raises(TypeError):
        SmallCNN(10)  # type: ignore[misc]


def test_default_meta_of_cifar_resnets_is_the_akamaster_normalisation() -> None:
    meta = default_meta("resnet56")
    assert meta.mean == (0.485, 0.456, 0.406) and meta.std == (0.229, 0.224, 0.225)
    assert meta.input_size == (32, 32) and meta.num_classes == 10
