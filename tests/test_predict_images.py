"""scripts/predict_images.py: the trained fold models on images outside the pipeline."""
import json

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, copy_project, make_competition, run_here, run_script

from foldstack.stages.predict_images import class_probs, top_k_frame

SETTINGS = [*TINY, "predict.tta=[]"]


def predict_images(root, *extra, check=True):
    return run_here(root, "predict_images.py", "c", *SETTINGS, extra=list(extra), check=check)


@pytest.fixture(scope="module")
def trained(tiny_trained, tmp_path_factory):
    return copy_project(tiny_trained, tmp_path_factory.mktemp("predict_images") / "project")


def test_test_folder_matches_oof_test_predictions(trained):
    root = trained
    run_here(root, "03_predict.py", "c", *SETTINGS)
    [test_npy] = [p.parent / "test.npy" for p in root.glob("oof/c/baseline/*/manifest.json")
                  if json.loads(p.read_text())["config"]["predict"]["tta"] == []]  # the session's has TTA
    ids = pd.read_csv(root / "input/c/sample_submission.csv")["id"].tolist()
    expected = pd.DataFrame(np.load(test_npy), index=[f"{i}.png" for i in ids], columns=["cat", "dog", "sea turtle"])

    proc = predict_images(root, "--images", str(root / "input/c/test"))
    out = root / "predictions/c/baseline/test.csv"
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    assert len(proc.stdout.strip().splitlines()) == len(ids) + 1  # 8 images shown, then the path
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["image", "top1", "p1", "top2", "p2", "top3", "p3", "cat", "dog", "sea turtle"]
    assert sorted(frame["image"]) == sorted(expected.index)
    frame = frame.set_index("image").loc[expected.index]
    np.testing.assert_allclose(frame[expected.columns].to_numpy(), expected.to_numpy(), atol=1e-5)
    assert (frame["top1"] == expected.idxmax(axis=1)).all()
    np.testing.assert_allclose(frame["p1"], expected.max(axis=1), atol=1e-5)


def test_single_file_top_k_sorted(trained, tmp_path):
    image = trained / "input/c/test/test_003.png"
    out = tmp_path / "one.csv"
    proc = predict_images(trained, "--images", str(image), "--top-k", "2", "--out", str(out))
    frame = pd.read_csv(out)
    assert list(frame["image"]) == ["test_003.png"]
    assert list(frame.columns[:5]) == ["image", "top1", "p1", "top2", "p2"]
    p = frame[["p1", "p2"]].to_numpy()[0]
    assert p[0] >= p[1] >= 0 and p.sum() <= 1 + 1e-6
    assert proc.stdout.startswith(f"test_003.png: {frame.top1[0]} ")


def test_top_k_frame_binary_and_capped():
    probs = class_probs(np.array([[0.9], [0.2]]), "binary")  # the positive class "1"
    frame = top_k_frame(["a.png", "b/c.png"], probs, ["0", "1"], k=5)  # capped at 2 classes
    assert list(frame.columns) == ["image", "top1", "p1", "top2", "p2", "0", "1"]
    assert frame.top1.tolist() == ["1", "0"] and frame.top2.tolist() == ["0", "1"]
    np.testing.assert_allclose(frame.p1, [0.9, 0.8])
    np.testing.assert_allclose(frame.p2, [0.1, 0.2])
    clash = top_k_frame(["x"], np.array([[0.3, 0.7]]), ["image", "b"], k=1)  # a class named like a column
    assert list(clash.columns) == ["image", "top1", "p1", "prob_image", "prob_b"]
    wide = top_k_frame(["x"], np.full((1, 60), 1 / 60), [f"c{i}" for i in range(60)], k=3)
    assert list(wide.columns) == ["image", "top1", "p1", "top2", "p2", "top3", "p3"]


def one_error(proc) -> str:
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) >= 1 and lines[-1].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[-1]


def test_no_images_and_missing_path(trained, tmp_path):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("not an image")
    out = tmp_path / "out.csv"
    err = one_error(predict_images(trained, "--images", str(empty), "--out", str(out), check=False))
    assert "no images found" in err and str(empty) in err
    missing = tmp_path / "nowhere.png"
    err = one_error(predict_images(trained, "--images", str(missing), "--out", str(out), check=False))
    assert str(missing) in err
    assert not out.exists() and not list(tmp_path.rglob("*.csv"))


def test_bad_image_named(trained, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    good = (trained / "input/c/test/test_000.png").read_bytes()
    (folder / "a.png").write_bytes(good)
    (folder / "b.png").write_bytes(good[: len(good) // 2])  # truncated
    out = tmp_path / "out.csv"
    err = one_error(predict_images(trained, "--images", str(folder), "--out", str(out), check=False))
    assert "b.png" in err and "truncated" in err
    assert not out.exists()


def test_untrained_experiment(tmp_path):
    root = tmp_path / "p"
    make_competition(root, "c", "label")
    run_script(root, "01_folds.py", "c", *SETTINGS)
    err = one_error(predict_images(root, "--images", str(root / "input/c/test"), check=False))
    assert "not trained" in err and "make train" in err
    assert not (root / "predictions").exists()
