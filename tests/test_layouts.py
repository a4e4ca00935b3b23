"""Kaggle layouts beyond one image per id (issue 24): paddy-disease-classification's train csv beside class folders
(train_images/<label>/<image_id>), herbarium-2022-fgvc9's COCO-style train_metadata.json with nested folders,
thousands of rare classes and a test_metadata.json naming each test file, and imet-2020-fgvc7's space-separated
attribute ids beside a labels.csv that is not the train table. Tiny generated data in the real names and shapes."""
import json

import numpy as np
import pandas as pd
import pytest

from conftest import COLORS, write_png
from foldstack.config.competition import Competition
from foldstack.data.splits import assign_folds, metric_requirements
from foldstack.data.table import class_index, encode_targets, load_test, load_train
from foldstack.discover import discover_competition
from foldstack.errors import PipelineError

PADDY_LABELS = ["bacterial_leaf_blight", "blast", "normal"]


def paddy(root):
    """train.csv (image_id with .jpg, label, variety, age), train_images/<label>/<image_id>, flat test_images/,
    sample_submission image_id,label with the label empty (as MLE-bench's prepare.py writes it)."""
    folder = root / "input" / "paddy"
    rows = [(f"1{i:05d}.jpg", PADDY_LABELS[i % 3], "ADT45", 45 + i) for i in range(12)]
    for i, (image_id, label, _, _) in enumerate(rows):
        write_png(folder / "train_images" / label / image_id, COLORS[i % 3], seed=i, size=8)
    test = [f"2{i:05d}.jpg" for i in range(4)]
    for i, image_id in enumerate(test):
        write_png(folder / "test_images" / image_id, COLORS[i % 3], seed=100 + i, size=8)
    pd.DataFrame(rows, columns=["image_id", "label", "variety", "age"]).to_csv(folder / "train.csv", index=False)
    pd.DataFrame({"image_id": test, "label": ""}).to_csv(folder / "sample_submission.csv", index=False)
    (folder / "description.md").write_text("### Evaluation\n\nSubmissions will be evaluated based on their "
                                           "[categorization accuracy](https://x).\n")
    return folder, rows


def test_paddy_class_folders_beside_a_csv(tmp_path, caplog):
    folder, rows = paddy(tmp_path)
    with caplog.at_level("INFO", logger="foldstack"):
        comp = discover_competition(folder)
    assert (comp["train_dir"], comp["train_path"], comp["train_image_ext"]) == ("train_images", "{label}/{image_id}",
                                                                                "")
    assert (comp["test_dir"], comp["test_image_ext"]) == ("test_images", "")
    assert comp["task"] == "multiclass" and comp["classes"] == PADDY_LABELS and comp["metric"] == "accuracy"
    assert comp["target_cols"] == ["label"] and comp["submission_format"] == "label"
    assert any("competition.train_path: '{label}/{image_id}'" in r.getMessage() for r in caplog.records)
    config = Competition(**comp)
    train = load_train(config, tmp_path, "paddy")
    assert train.ids == [r[0] for r in rows]
    assert train.paths == [folder / "train_images" / label / image_id for image_id, label, _, _ in rows]
    assert encode_targets(train, config).argmax(1).tolist() == [i % 3 for i in range(12)]
    assert load_test(config, tmp_path, "paddy").paths[0] == folder / "test_images" / "200000.jpg"
    # a row whose image is not in its label's folder: one line naming the row
    (folder / "train_images" / "blast" / "100001.jpg").rename(folder / "train_images" / "normal" / "100001.jpg")
    with pytest.raises(PipelineError, match=r"train.csv row 3: image not found: .*train_images/blast/100001.jpg"):
        load_train(config, tmp_path, "paddy")


def test_an_image_in_neither_layout_is_the_plain_refusal(tmp_path):
    folder, _ = paddy(tmp_path)
    for p in (folder / "train_images").glob("*/*.jpg"):
        p.rename(p.with_suffix(".webp"))
    with pytest.raises(PipelineError, match=r"train_images: no image file for id '100000.jpg'"):
        discover_competition(folder)


HERBARIUM_EVALUATION = ("## Evaluation\n\nSubmissions are evaluated using the [macro F1 score](https://x). In "
                        "\"macro\" F1 a separate F1 score is calculated for each `species` value and then averaged.\n")


def herbarium(root, n_classes=20, singletons=(3, 7, 11, 15, 19)):
    """train_metadata.json (images, annotations, categories, genera, institutions) with images in
    train_images/<cat // 100:03d>/<cat % 100:02d>/<cat:05d>__<n:03d>.jpg, 8 images a class but the singletons';
    test_metadata.json a list of {image_id, file_name} under test_images/<idx // 1000:03d>/; Id,Predicted."""
    folder = root / "input" / "herb"
    images, annotations = [], []
    for cat in range(n_classes):
        for n in range(1 if cat in singletons else 8):
            image_id = f"{cat:05d}__{n + 1:03d}"
            file_name = f"{cat // 100:03d}/{cat % 100:02d}/{image_id}.jpg"
            write_png(folder / "train_images" / file_name, COLORS[cat % 4], seed=cat * 10 + n, size=8)
            images.append({"image_id": image_id, "file_name": file_name, "license": 0})
            annotations.append({"image_id": image_id, "category_id": cat, "genus_id": cat // 4,
                                "institution_id": cat % 3})
    meta = {"images": images, "annotations": annotations, "licenses": [{"id": 0}],
            "categories": [{"category_id": c, "scientific_name": f"species {c}"} for c in range(n_classes)],
            "genera": [{"genus_id": g, "genus": f"genus {g}"} for g in range(n_classes // 4)],
            "institutions": [{"institution_id": i, "collectionCode": f"I{i}"} for i in range(3)]}
    (folder / "train_metadata.json").write_text(json.dumps(meta))
    test = [{"image_id": str(i), "file_name": f"{i // 1000:03d}/test-{i:06d}.jpg"} for i in range(6)]
    for t in test:
        write_png(folder / "test_images" / t["file_name"], COLORS[0], seed=int(t["image_id"]), size=8)
    (folder / "test_metadata.json").write_text(json.dumps(test))
    pd.DataFrame({"Id": [t["image_id"] for t in test], "Predicted": 42}).to_csv(folder / "sample_submission.csv",
                                                                              index=False)
    (folder / "description.md").write_text(HERBARIUM_EVALUATION)
    return folder, images, annotations


def test_herbarium_coco_metadata_is_the_train_table(tmp_path, caplog):
    folder, images, annotations = herbarium(tmp_path)
    comp = discover_competition(folder)
    assert comp["layout"] == "csv" and "train_csv" not in comp
    assert (comp["train_metadata"], comp["test_metadata"]) == ("train_metadata.json", "test_metadata.json")
    assert (comp["train_dir"], comp["train_path"], comp["test_dir"]) == ("train_images", "{file_name}", "test_images")
    assert comp["id_col"] == "Id" and comp["target_cols"] == ["category_id"]
    assert comp["task"] == "multiclass" and comp["classes"] == [str(c) for c in range(20)]
    assert comp["metric"] == "macro_f1" and comp["submission_format"] == "label"
    assert comp["submission_columns"] == ["Id", "Predicted"]
    config = Competition(**comp)
    train = load_train(config, tmp_path, "herb")
    assert train.ids == [i["image_id"] for i in images] and len(train) == 15 * 8 + 5
    assert train.paths[:2] == [folder / "train_images" / "000/00/00000__001.jpg",
                               folder / "train_images" / "000/00/00000__002.jpg"]
    assert train.frame["genus_id"].tolist()[:9] == ["0"] * 9  # the annotations' other ids are kept, as strings
    y = encode_targets(train, config)
    assert y.shape == (125, 20) and y.argmax(1).tolist() == [a["category_id"] for a in annotations]
    test = load_test(config, tmp_path, "herb")
    assert test.ids == [str(i) for i in range(6)] and test.paths[5] == folder / "test_images" / "000/test-000005.jpg"

    # the folds stage's assignment: stratified, macro F1's classes; the 5 singletons spread, not refused
    labels = class_index(train, config)
    needs = metric_requirements(y, config.task, config.metric, config.classes)
    with caplog.at_level("INFO", logger="foldstack"):
        folds = assign_folds(len(train), 5, 42, "auto", labels, None, None, needs, config.classes, train.source)
    assert np.bincount(folds, minlength=5).tolist() == [25] * 5
    frequent = [c for c in range(20) if c not in (3, 7, 11, 15, 19)]
    assert all(np.bincount(folds[labels == c], minlength=5).min() >= 1 for c in frequent)
    assert sorted(folds[np.isin(labels, [3, 7, 11, 15, 19])].tolist()) == [0, 1, 2, 3, 4]
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rare classes")]
    assert line.startswith("rare classes: 5 class(es) (5 train rows) with fewer rows each than folds.n_splits=5 (")
    assert "train_metadata.json) are spread" in line and "; 5 of those rows have no row of their class" in line


def test_herbarium_bad_metadata_is_one_line(tmp_path):
    folder, images, annotations = herbarium(tmp_path)
    meta = json.loads((folder / "train_metadata.json").read_text())
    meta["annotations"].append(dict(meta["annotations"][0], category_id=5))
    (folder / "train_metadata.json").write_text(json.dumps(meta))
    with pytest.raises(PipelineError, match=r"train_metadata.json: image_id '00000__001' has several annotations"):
        discover_competition(folder)
    (folder / "train_metadata.json").write_text('{"images": [')
    with pytest.raises(PipelineError, match=r"train_metadata.json: not a readable JSON file"):
        discover_competition(folder)
    (folder / "train_metadata.json").write_text(json.dumps({"images": images, "annotations": annotations[1:]}))
    with pytest.raises(PipelineError, match=r"train_metadata.json row 2: empty category_id; fill them"):
        discover_competition(folder)  # an image without annotation: an empty label, refused like an empty cell
    assert discover_competition(folder, drop_unlabeled=True)["drop_unlabeled"] is True
    (folder / "train_metadata.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    test = json.loads((folder / "test_metadata.json").read_text())[:-1]
    (folder / "test_metadata.json").write_text(json.dumps(test))
    with pytest.raises(PipelineError, match=r"sample submission: id '5' is not in test_metadata.json"):
        discover_competition(folder)


IMET_EVALUATION = ("## Evaluation\n\nSubmissions will be evaluated based on their micro averaged "
                   "[F1 score](https://en.wikipedia.org/wiki/F1_score).\n\n### Submission File\n\nid,attribute_ids\n")


def test_imet_attribute_ids_are_tags_and_labels_csv_is_not_the_train_table(tmp_path, caplog):
    """imet-2020-fgvc7: train.csv id,attribute_ids (space-separated ints), labels.csv (attribute_id,
    attribute_name) beside it, train/<id>.png, sample id,attribute_ids '0 1 2', micro F1 (MLE-bench's grade.py)."""
    folder = tmp_path / "input" / "imet"
    tags = ["13 51", "13", "51 121 1092", "121", "13 1092", "2 13 51", "2", "51 1092", "121 13", "2 1092"] * 2
    ids = [f"{i:032x}" for i in range(20)]
    for i, ident in enumerate(ids):
        write_png(folder / "train" / f"{ident}.png", COLORS[i % 4], seed=i, size=8)
    test = [f"{1000 + i:032x}" for i in range(3)]
    for i, ident in enumerate(test):
        write_png(folder / "test" / f"{ident}.png", COLORS[i % 4], seed=50 + i, size=8)
    pd.DataFrame({"id": ids, "attribute_ids": tags}).to_csv(folder / "train.csv", index=False)
    pd.DataFrame({"attribute_id": [2, 13, 51, 121, 1092],
                  "attribute_name": ["culture::a", "culture::b", "tag::c", "tag::d", "tag::e"]}).to_csv(
        folder / "labels.csv", index=False)
    pd.DataFrame({"id": test, "attribute_ids": "0 1 2"}).to_csv(folder / "sample_submission.csv", index=False)
    (folder / "description.md").write_text(IMET_EVALUATION)
    with caplog.at_level("INFO", logger="foldstack"):
        comp = discover_competition(folder)
    assert comp["train_csv"] == "train.csv" and comp["target_cols"] == ["attribute_ids"]
    assert comp["task"] == "multilabel" and comp["classes"] == ["2", "13", "51", "121", "1092"]
    assert comp["submission_format"] == "tags" and comp["metric"] == "micro_f1"
    assert (comp["train_dir"], comp["train_image_ext"], comp["test_image_ext"]) == ("train", ".png", ".png")
    assert any("competition.metric: micro_f1, as" in r.getMessage() and "micro averaged f1 score" in r.getMessage()
               for r in caplog.records)  # read from the text (the link's text), not the task's default
    y = encode_targets(load_train(Competition(**comp), tmp_path, "imet"), Competition(**comp))
    assert y.sum(0).tolist() == [6, 10, 8, 6, 8]


def test_leaf_tabular_features_beside_a_shared_images_folder_are_not_pixels(tmp_path):
    """leaf-classification: train.csv id,species,margin1..64,shape1..64,texture1..64 and test.csv the same less
    species (three runs of 64 numbered columns: features, not an 8x8 image), images/<id>.jpg for train and test,
    a probability column per species."""
    folder = tmp_path / "input" / "leaf"
    species = ["Acer_Capillipes", "Acer_Circinatum", "Acer_Mono", "Quercus_Rubra"]
    features = {f"{kind}{n}": np.linspace(0, 0.05, 14).round(5) for kind in ("margin", "shape", "texture")
                for n in range(1, 65)}
    for i in range(1, 15):
        write_png(folder / "images" / f"{i}.jpg", COLORS[i % 4], seed=i, size=8)
    pd.DataFrame({"id": range(1, 11), "species": [species[i % 4] for i in range(10)],
                  **{k: v[:10] for k, v in features.items()}}).to_csv(folder / "train.csv", index=False)
    pd.DataFrame({"id": range(11, 15), **{k: v[10:] for k, v in features.items()}}).to_csv(folder / "test.csv",
                                                                                         index=False)
    pd.DataFrame({"id": range(11, 15), **{s: 0.25 for s in species}}).to_csv(folder / "sample_submission.csv",
                                                                            index=False)
    comp = discover_competition(folder)
    assert "image_source" not in comp and (comp["train_dir"], comp["test_dir"]) == ("images", "images")
    assert (comp["train_image_ext"], comp["test_image_ext"]) == (".jpg", ".jpg")
    assert comp["target_cols"] == ["species"] and comp["classes"] == species
    assert (comp["task"], comp["submission_format"], comp["metric"]) == ("multiclass", "class_columns", "log_loss")
    test = load_test(Competition(**comp), tmp_path, "leaf")
    assert test.paths == [folder / "images" / f"{i}.jpg" for i in range(11, 15)]


@pytest.mark.parametrize("section, metric", [
    ("## **Evaluation**\n\nSubmissions are evaluated on [area under the ROC curve](http://x) between the predicted "
     "probability and the observed target.\n\n### **Submission File**\n", "roc_auc"),  # SETI: a bold heading
    ("### Evaluation\n\n#### Root Mean Squared Error $RMSE$\n\nSubmissions are scored on the root mean squared "
     "error.\n", "rmse"),  # petfinder: regression
    ("## Evaluation\n\nSubmissions are evaluated according to the Mean Average Precision @ 5 (MAP@5):\n",
     "map_at_k")])  # whale: top-5 retrieval (tests/test_topk.py)
def test_bold_evaluation_headings_are_read(section, metric):
    from foldstack.description import described_metric

    text = f"# title\n\n## Description\n\nAUC is not the metric here.\n\n{section}\n## Timeline\n\nlog loss\n"
    if metric == "map_at_k":  # a ranking of one label per row
        assert described_metric(text, "multiclass") == (metric, "submissions are evaluated according to the mean "
                                                                "average precision @ 5 (map@5):")
    elif metric == "rmse":  # a regression metric: the regression task's, and a misread task is one line
        assert described_metric(text, "regression") == ("rmse", "#### root mean squared error $rmse$")
        with pytest.raises(PipelineError, match=r"scored on rmse, but the target was read as a multiclass task"):
            described_metric(text, "multiclass")
    else:
        assert described_metric(text, "binary")[0] == metric
