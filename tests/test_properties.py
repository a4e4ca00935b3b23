"""Property tests (hypothesis): for any generated valid competition folder, inference round-trips (the written
config reads back, and the targets decode to the labels that were written); the submission validator accepts
exactly the valid files."""
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from foldstack.config.competition import Competition
from foldstack.data.table import encode_targets, load_test, load_train
from foldstack.errors import PipelineError
from foldstack.discover import write_competition_config
from foldstack.submission import build_submission, validate_submission

KINDS = ("binary", "label", "numeric_label", "tags", "onehot", "prob_columns")
# ids: any printable unicode (spaces included) that names a file: no path separators, not '.' or '..'
ID_CHARS = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="/\\")
ids_strategy = st.lists(st.text(ID_CHARS, min_size=1, max_size=10).filter(
    lambda s: s.strip() == s and s not in (".", "..")), min_size=2, max_size=12, unique=True)
WORD = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Lo")), min_size=1, max_size=6)


@st.composite
def class_names(draw, kind):
    if kind == "binary":
        return ["0", "1"]
    if kind == "numeric_label":
        return [str(v) for v in draw(st.lists(st.integers(2, 500), min_size=3, max_size=5, unique=True))]
    words = draw(st.lists(WORD, min_size=2, max_size=8, unique=True))
    if kind in ("label", "prob_columns"):  # a label may hold spaces; no word is shared, so it never reads as tags
        return [" ".join(words[i:i + 2]) for i in range(0, len(words), 2)] if len(words) > 3 else words
    return words  # tags and one-hot columns: single words


@st.composite
def competitions(draw):
    kind = draw(st.sampled_from(KINDS))
    classes = draw(class_names(kind))
    assume(len(classes) >= 2 and "id" not in classes)
    train_ids, test_ids = draw(ids_strategy), draw(ids_strategy)
    k = len(classes)
    if kind == "tags":  # every tag alone, then a pair: more distinct tag sets than tags, as multilabel data shows
        rows = [[c] for c in classes] + [classes[:2]]
        rows += draw(st.lists(st.lists(st.sampled_from(classes), min_size=1, max_size=k, unique=True),
                              max_size=len(train_ids)))
    else:  # every class at least once
        rows = [[c] for c in classes] + [[draw(st.sampled_from(classes))] for _ in train_ids]
    train_ids = [f"t{i} {name}" for i, name in enumerate((train_ids * len(rows))[:len(rows)])]
    return kind, classes, train_ids, rows, test_ids


def write_folder(root: Path, kind, classes, train_ids, rows, test_ids) -> Path:
    folder = root / "input" / "c"
    for split, ids in (("train", train_ids), ("test", test_ids)):
        (folder / split).mkdir(parents=True)
        for i in ids:
            (folder / split / f"{i}.png").touch()  # inference and the tables only look for the files
    target = "target"
    if kind == "onehot":
        train = pd.DataFrame({"id": train_ids, **{c: [int(c in r) for r in rows] for c in classes}})
        sample = pd.DataFrame({"id": test_ids, **{c: 0.5 for c in classes}})
    else:
        train = pd.DataFrame({"id": train_ids, target: [" ".join(r) for r in rows]})
        fill = {"prob_columns": None, "binary": 0.5}.get(kind, classes[0])
        sample = (pd.DataFrame({"id": test_ids, **{c: 1 / len(classes) for c in classes}}) if fill is None
                  else pd.DataFrame({"id": test_ids, target: fill}))
    train.to_csv(folder / "train.csv", index=False)
    sample.to_csv(folder / "sample_submission.csv", index=False)
    return folder


EXPECTED = {"binary": ("binary", "roc_auc", "probability"), "label": ("multiclass", "accuracy", "label"),
            "numeric_label": ("multiclass", "accuracy", "label"), "tags": ("multilabel", "micro_f1", "tags"),
            "prob_columns": ("multiclass", "log_loss", "class_columns")}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(competitions())
def test_inference_round_trips(spec):
    kind, classes, train_ids, rows, test_ids = spec
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_folder(root, *spec)
        written = write_competition_config(root / "c.yaml", root / "input" / "c")
        comp = yaml.safe_load((root / "c.yaml").read_text())["competition"]
        assert comp == written  # the YAML reads back as inferred, unicode and spaces included
        if kind == "onehot":
            multi = any(len(r) > 1 for r in rows)
            want = ("multilabel" if multi else "multiclass", "log_loss", "class_columns")
            assert comp["classes"] == classes and comp["target_cols"] == classes
        else:
            want = EXPECTED[kind]
            order = (classes if kind == "prob_columns" else sorted(classes, key=int) if kind == "numeric_label"
                     else sorted(classes))  # numbers in numeric order ('2' < '10'), else by code point
            assert comp["classes"] == order and comp["target_cols"] == ["target"]
        assert (comp["task"], comp["metric"], comp["submission_format"]) == want
        assert comp["id_col"] == "id" and comp["test_image_ext"] == comp["train_image_ext"] == ".png"

        config = Competition(**comp)
        train = load_train(config, root, "c")
        assert train.ids == train_ids and load_test(config, root, "c").ids == test_ids
        y = encode_targets(train, config)
        names = config.classes
        decoded = ([[names[1]] if v else [names[0]] for v in y[:, 0]] if config.task == "binary"
                   else [[names[j] for j in np.flatnonzero(row)] for row in y])
        assert [sorted(d) for d in decoded] == [sorted(r) for r in rows]


FORMATS = {"probability": ("binary", ["0", "1"]), "label": ("multiclass", ["a", "b c", "ü"]),
           "class_columns": ("multiclass", ["x", "y", "z"]), "tags": ("multilabel", ["p", "q", "r", "s"])}
MUTATIONS = ("none", "drop_row", "extra_row", "swap_rows", "duplicate_id", "blank_cell", "bad_value",
             "rename_column")


@settings(max_examples=150, deadline=None)
@given(fmt=st.sampled_from(sorted(FORMATS)), ids=ids_strategy, seed=st.integers(0, 2**31 - 1),
       mutation=st.sampled_from(MUTATIONS), data=st.data())
def test_the_validator_accepts_exactly_the_valid_files(fmt, ids, seed, mutation, data):
    task, classes = FORMATS[fmt]
    cols = ["id", "target"] if fmt != "class_columns" else ["id", *classes]
    comp = Competition(task=task, classes=classes, submission_format=fmt, submission_columns=cols,
                       target_cols=["target"], metric="accuracy")
    rng = np.random.default_rng(seed)
    k = 1 if task == "binary" else len(classes)
    probs = rng.random((len(ids), k))
    if task == "multiclass":
        probs /= probs.sum(1, keepdims=True)
    sample = pd.DataFrame({c: ids if c == "id" else "0" for c in cols})
    sub = build_submission(comp, ids, probs).astype(object)
    i, j = data.draw(st.lists(st.integers(0, len(ids) - 1), min_size=2, max_size=2, unique=True))
    col = data.draw(st.sampled_from(cols[1:]))
    if mutation == "drop_row":
        sub = sub.drop(index=i).reset_index(drop=True)
    elif mutation == "extra_row":
        sub = pd.concat([sub, sub.iloc[[i]]], ignore_index=True)
    elif mutation == "swap_rows":
        sub.iloc[[i, j]] = sub.iloc[[j, i]].to_numpy()
    elif mutation == "duplicate_id":
        sub.loc[j, "id"] = sub.loc[i, "id"]
    elif mutation == "blank_cell":
        sub.loc[i, col] = data.draw(st.sampled_from(["", " ", None, np.nan]))
    elif mutation == "bad_value":
        bad = (data.draw(st.sampled_from([-0.01, 1.5, "abc", "inf"])) if fmt in ("probability", "class_columns")
               else data.draw(st.sampled_from(["d", "a b", "P", "p q zz"])))
        sub.loc[i, col] = bad
    elif mutation == "rename_column":
        sub = sub.rename(columns={col: col + "_"})
    # through a CSV file, as the validator meets it in make score
    with tempfile.TemporaryDirectory() as tmp:
        sub.to_csv(Path(tmp) / "s.csv", index=False)
        sub = pd.read_csv(Path(tmp) / "s.csv", dtype=str, keep_default_na=False)
    try:
        validate_submission(sub, sample, comp)
        accepted = True
    except PipelineError:
        accepted = False
    assert accepted == (mutation == "none"), (mutation, sub)
