import pytest

from foldstack.discover import discover_competition
from foldstack.errors import PipelineError

from conftest import make_competition


def test_binary_probability(tmp_path):
    comp = discover_competition(make_competition(tmp_path, "b", "binary", ext=".jpg", ids_with_ext=True))
    assert comp["task"] == "binary" and comp["metric"] == "roc_auc" and comp["submission_format"] == "probability"
    assert comp["target_cols"] == ["has_thing"] and comp["classes"] == ["0", "1"]
    assert comp["train_image_ext"] == "" and comp["test_image_ext"] == ""


def test_multiclass_label_with_spaces_in_labels(tmp_path):
    comp = discover_competition(make_competition(tmp_path, "m", "label", ext=".jpeg"))
    assert comp["task"] == "multiclass" and comp["metric"] == "accuracy" and comp["submission_format"] == "label"
    assert comp["classes"] == ["cat", "dog", "sea turtle"] and comp["train_image_ext"] == ".jpeg"


def test_multilabel_tags(tmp_path):
    comp = discover_competition(make_competition(tmp_path, "t", "tags", classes=("haze", "primary", "road")))
    assert comp["task"] == "multilabel" and comp["metric"] == "micro_f1" and comp["submission_format"] == "tags"
    assert comp["classes"] == ["haze", "primary", "road"]


def test_folder_per_class(tmp_path):
    comp = discover_competition(make_competition(tmp_path, "f", "folders", ext=".bmp"))
    assert comp["layout"] == "folders" and comp["task"] == "multiclass"
    assert comp["classes"] == ["cat", "dog", "sea turtle"]
    assert comp["test_image_ext"] == ".bmp"


def test_probability_columns(tmp_path):
    comp = discover_competition(make_competition(tmp_path, "c", "class_columns"))
    assert comp["submission_format"] == "class_columns" and comp["metric"] == "log_loss"
    assert comp["target_cols"] == ["label"] and comp["classes"] == ["cat", "dog", "sea turtle"]


def test_numeric_classes_sort_numerically(tmp_path):
    comp = discover_competition(make_competition(tmp_path, "n", "label", classes=("2", "10", "1")))
    assert comp["classes"] == ["1", "2", "10"]


def test_missing_pieces_are_named(tmp_path):
    with pytest.raises(PipelineError, match="competition folder not found"):
        discover_competition(tmp_path / "nope")
    folder = make_competition(tmp_path, "x", "label")
    (folder / "sample_submission.csv").unlink()
    with pytest.raises(PipelineError, match="no sample_submission"):
        discover_competition(folder)
    folder = make_competition(tmp_path, "y", "label", ext=".png")
    for p in (folder / "train").glob("*.png"):
        p.rename(p.with_suffix(".webp"))
    with pytest.raises(PipelineError, match="no image file for id 'train_000'"):
        discover_competition(folder)
