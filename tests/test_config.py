import pytest

from foldstack.config.loading import parse_overrides, resolve
from foldstack.config.schema import Config
from foldstack.context import load_config
from foldstack.errors import PipelineError

from conftest import make_competition


def test_defaults_live_in_the_schema():
    cfg = resolve([])
    assert cfg == Config() and cfg.folds.n_splits == 5 and cfg.predict.tta == ["hflip"]


def test_overrides_parse_yaml_values():
    assert parse_overrides(["train.epochs=3", "predict.tta=[]", "model.pretrained_path=null", "train.ema=true"]) == {
        "train": {"epochs": 3, "ema": True}, "predict": {"tta": []}, "model": {"pretrained_path": None}}
    with pytest.raises(PipelineError, match="section.key=value"):
        parse_overrides(["train.epochs"])


@pytest.mark.parametrize("layer, message", [
    ({"train": {"epoch": 3}}, "train.epoch: unknown key"),
    ({"trian": {"epochs": 3}}, "trian: unknown key"),
    ({"train": {"epochs": "many"}}, "train.epochs: Input should be a valid integer"),
    ({"folds": {"n_splits": 1}}, "folds.n_splits"),
    ({"predict": {"tta": ["rot90"]}}, "predict.tta.0"),
])
def test_unknown_key_or_wrong_type_is_one_line_naming_key_and_source(layer, message):
    with pytest.raises(PipelineError) as err:
        resolve([("configs/x.yaml", layer)])
    text = str(err.value)
    assert message in text and "configs/x.yaml" in text and "\n" not in text


def test_layers_merge_in_order(tmp_path):
    make_competition(tmp_path, "toy")
    (tmp_path / "configs" / "exp").mkdir(parents=True)
    cfg = load_config(tmp_path, "toy", "baseline", [])  # infers and writes configs/toy.yaml
    assert (tmp_path / "configs" / "toy.yaml").is_file() and cfg.train.epochs == 10
    with open(tmp_path / "configs" / "toy.yaml", "a") as f:
        f.write("train:\n  epochs: 4\n  lr: 0.01\n")
    (tmp_path / "configs" / "exp" / "big.yaml").write_text("train:\n  epochs: 7\nmodel:\n  name: resnet34\n")
    cfg = load_config(tmp_path, "toy", "big", ["train.epochs=9"])
    assert (cfg.train.epochs, cfg.train.lr, cfg.model.name) == (9, 0.01, "resnet34")
    with pytest.raises(PipelineError, match="experiment config not found"):
        load_config(tmp_path, "toy", "missing", [])


def test_bad_yaml_is_reported_with_file(tmp_path):
    make_competition(tmp_path, "toy")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "toy.yaml").write_text("competition: [unclosed\n")
    with pytest.raises(PipelineError, match=r"toy.yaml: invalid YAML at line"):
        load_config(tmp_path, "toy", "baseline", [])
