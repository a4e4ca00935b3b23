"""Bad input: a one-line error naming the file/row/key, a non-zero exit, nothing written. The stages run in this
process (run_here) except in two tests that hold a real process's stderr to the same contract."""
import pandas as pd
import pytest

from conftest import TINY, make_competition, run_here, run_script


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def no_artifacts(root):
    return not any((root / d).exists() for d in ("folds", "models", "oof", "stacks", "submissions"))


def test_missing_competition_folder(tmp_path):
    proc = run_script(tmp_path, "01_folds.py", "nothere", check=False)
    assert_one_line_error(proc, "competition folder not found", "nothere")
    assert not (tmp_path / "configs" / "nothere.yaml").exists()


def test_missing_train_csv_after_inference(tmp_path):
    folder = make_competition(tmp_path, "c")
    run_here(tmp_path, "01_folds.py", "c")
    (folder / "train.csv").rename(folder / "old.csv")
    proc = run_here(tmp_path, "01_folds.py", "c", "folds.seed=1", check=False)
    assert_one_line_error(proc, "missing train csv", "train.csv")


def test_missing_column(tmp_path):
    folder = make_competition(tmp_path, "c")
    run_here(tmp_path, "01_folds.py", "c")
    frame = pd.read_csv(folder / "train.csv").rename(columns={"label": "klass"})
    frame.to_csv(folder / "train.csv", index=False)
    proc = run_here(tmp_path, "01_folds.py", "c", check=False)
    assert_one_line_error(proc, "train.csv", "missing column(s) 'label'")


@pytest.mark.parametrize("column, row, value, ids_with_ext, expected", [
    ("label", 4, "horse", False, ("train.csv row 6", "'horse' is not a known class")),
    ("id", 2, "../test/test_000.png", True, ("train.csv row 4", "points outside")),
])
def test_a_bad_cell_in_train_csv(tmp_path, column, row, value, ids_with_ext, expected):
    folder = make_competition(tmp_path, "c", ids_with_ext=ids_with_ext)
    run_here(tmp_path, "01_folds.py", "c")  # writes configs/c.yaml with the three classes
    frame = pd.read_csv(folder / "train.csv")
    frame.loc[row, column] = value
    frame.to_csv(folder / "train.csv", index=False)
    proc = run_here(tmp_path, "01_folds.py", "c", "folds.seed=3", check=False)  # a new split: the folds rerun
    assert_one_line_error(proc, *expected)


def test_missing_image(tmp_path):
    folder = make_competition(tmp_path, "c")
    run_here(tmp_path, "01_folds.py", "c")
    (folder / "train" / "train_007.png").unlink()
    proc = run_here(tmp_path, "01_folds.py", "c", check=False)
    assert_one_line_error(proc, "row 9", "image not found", "train_007.png")


def test_bad_override(tmp_path):
    make_competition(tmp_path, "c")
    proc = run_here(tmp_path, "01_folds.py", "c", "folds.n_split=3", check=False)
    assert_one_line_error(proc, "overrides", "folds.n_split: unknown key")
    assert no_artifacts(tmp_path)


@pytest.mark.parametrize("workers", [0, 2])
def test_image_that_does_not_decode(tmp_path, workers):
    folder = make_competition(tmp_path, "c")
    (folder / "train" / "train_005.png").write_bytes(b"not an image at all")
    run_script(tmp_path, "01_folds.py", "c", *TINY)
    proc = run_script(tmp_path, "02_train.py", "c", *TINY, f"runtime.num_workers={workers}", check=False)
    assert_one_line_error(proc, "cannot decode image", "train_005.png")
    assert not any((tmp_path / "models").rglob("manifest.json"))


def test_error_to_one_line_helpers():
    """A worker's re-raised traceback keeps its last line (and drops our own class prefix); a library's error its
    first line; a subprocess its last printed line (stdout's when it printed any: stderr is read first)."""
    import subprocess

    from foldstack.errors import PipelineError, first_line, last_output_line, one_line

    worker = RuntimeError("Caught PipelineError in DataLoader worker process 0.\nTraceback (most recent call last):\n"
                          '  File "x.py", line 3\nfoldstack.errors.PipelineError: train.csv row 6: bad label\n\n')
    assert one_line(worker) == "train.csv row 6: bad label"
    assert one_line(PipelineError("")) == "PipelineError"
    library = ValueError("unsupported operator aten::foo\n\n(the exporter's advice)\n")
    assert first_line(library) == "unsupported operator aten::foo"
    assert first_line(library, with_type=True) == "ValueError: unsupported operator aten::foo"
    assert first_line(KeyError()) == "KeyError" and len(first_line(ValueError("x" * 999))) == 300
    proc = subprocess.CompletedProcess([], 1, stdout="", stderr="warning\nerror: no wheel\n  \n")
    assert last_output_line(proc) == "error: no wheel"
    proc = subprocess.CompletedProcess([], 1, stdout="403 Forbidden\n", stderr="warning\n")
    assert last_output_line(proc) == "403 Forbidden"
    assert last_output_line(subprocess.CompletedProcess([], 1, stdout="", stderr="")) == "no output"
