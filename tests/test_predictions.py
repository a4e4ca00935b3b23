"""Prediction artifacts: .npy matrices bound to their rows; a folder made for other rows is refused."""
import numpy as np
import pytest

from foldstack.artifacts import write_manifest
from foldstack.errors import PipelineError
from foldstack.predictions import CSV_MAX_OUTPUTS, Predictions, load_predictions, rows_record, write_predictions

TRAIN, TEST = [f"t{i}" for i in range(6)], ["a", "b", "c"]


def saved(folder, n_outputs=2, plain=False, train=TRAIN, test=TEST):
    rng = np.random.default_rng(0)
    p = Predictions(rng.random((len(train), n_outputs)), rng.random((len(test), n_outputs)), np.arange(len(train)) % 2,
                    *((rng.random((len(train), n_outputs)), rng.random((len(test), n_outputs))) if plain else ()))
    write_predictions(folder, train, test, [f"c{k}" for k in range(n_outputs)], p)
    write_manifest(folder, "predict", "k", {}, fold_key="f", rows=rows_record(train, test))
    return p


def test_round_trip_keeps_values_and_folds(tmp_path):
    p = saved(tmp_path, plain=True)
    back = load_predictions(tmp_path, TRAIN, TEST, 2)
    assert np.allclose(back.oof, p.oof, atol=1e-7) and np.allclose(back.test_plain, p.test_plain, atol=1e-7)
    assert back.oof.dtype == np.float32 and np.array_equal(back.folds, p.folds)
    assert (tmp_path / "oof.csv").is_file()  # narrow: a CSV copy for people too


def test_without_tta_there_is_no_plain_copy_and_wide_outputs_skip_the_csv(tmp_path):
    saved(tmp_path, n_outputs=CSV_MAX_OUTPUTS + 1)
    back = load_predictions(tmp_path, TRAIN, TEST, CSV_MAX_OUTPUTS + 1)
    assert back.oof_plain is None and not (tmp_path / "oof.csv").exists()


@pytest.mark.parametrize("train, test, outputs, message", [
    (TRAIN[::-1], TEST, 2, "other train rows"),         # same ids, another order: rows would misalign
    (TRAIN, TEST + ["d"], 2, "other test rows"),
    (TRAIN, TEST, 3, "shape"),
])
def test_predictions_for_other_rows_are_refused(tmp_path, train, test, outputs, message):
    saved(tmp_path)
    with pytest.raises(PipelineError, match=message):
        load_predictions(tmp_path, train, test, outputs)
