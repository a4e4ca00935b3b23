"""Survey: discovery on 22 Kaggle image competitions as a new user meets them. For each, a tiny replica of its raw
download (scripts/layout_fixtures*.py: real names, columns, folders, file types, archives, description.md) is
written into a temp folder; then `make folds`' work runs in-process (discovery writes configs/<slug>.yaml, the train
and test rows load, the folds are assigned as stages/folds.py does) and one markdown row says what was inferred,
whether the metric is the one MLE-bench's grade.py computes, and what the user must set. No training. Not a test;
docs/competitions.md is written from its table.
    .venv/bin/python scripts/survey_layouts.py [slug ...]
"""
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import yaml

import layout_fixtures as f
import layout_fixtures_sources as s
from foldstack.config.competition import Competition, Folds
from foldstack.data.splits import assign_folds, metric_requirements
from foldstack.data.table import encode_targets, load_test, load_train
from foldstack.discover import discover_competition, write_competition_config
from foldstack.errors import PipelineError
from foldstack.stages.folds import split_inputs

BUILDERS = {
    "aerial-cactus-identification": f.aerial_cactus, "dogs-vs-cats-redux-kernels-edition": f.dogs_vs_cats,
    "dog-breed-identification": f.dog_breed, "histopathologic-cancer-detection": f.histopathologic,
    "plant-pathology-2020-fgvc7": f.plant_pathology_2020, "plant-pathology-2021-fgvc8": f.plant_pathology_2021,
    "aptos2019-blindness-detection": f.aptos, "ranzcr-clip-catheter-line-classification": f.ranzcr,
    "siim-isic-melanoma-classification": s.siim, "leaf-classification": f.leaf,
    "cassava-leaf-disease-classification": f.cassava, "plant-seedlings-classification": f.plant_seedlings,
    "paddy-disease-classification": f.paddy, "invasive-species-monitoring": f.invasive, "imet-2020-fgvc7": f.imet,
    "seti-breakthrough-listen": s.seti, "statoil-iceberg-classifier-challenge": s.statoil,
    "herbarium-2022-fgvc9": f.herbarium, "digit-recognizer": s.digit_recognizer,
    "human-protein-atlas-image-classification": s.human_protein_atlas,
    "petfinder-pawpularity-score": f.petfinder, "whale-categorization-playground": f.whale}
# Evaluation headings as the descriptions write them (SETI's is bold)
HEADINGS = {"aerial-cactus-identification": "### Evaluation", "dogs-vs-cats-redux-kernels-edition": "### Evaluation",
            "cassava-leaf-disease-classification": "### Evaluation", "petfinder-pawpularity-score": "### Evaluation",
            "seti-breakthrough-listen": "## **Evaluation**"}
COLUMNS = ["competition", "inferred task", "metric (from)", "grader's metric", "without description.md",
           "submission format", "image source / channels", "group col", "folds (5)", "user must set"]
GRADER_METRIC = {
    "aerial-cactus-identification": "roc_auc", "dogs-vs-cats-redux-kernels-edition": "log_loss",
    "dog-breed-identification": "log_loss", "histopathologic-cancer-detection": "roc_auc",
    "plant-pathology-2020-fgvc7": "roc_auc", "plant-pathology-2021-fgvc8": "micro_f1",
    "aptos2019-blindness-detection": "qwk", "ranzcr-clip-catheter-line-classification": "roc_auc",
    "siim-isic-melanoma-classification": "roc_auc", "leaf-classification": "log_loss",
    "cassava-leaf-disease-classification": "accuracy", "plant-seedlings-classification": "micro_f1",
    "paddy-disease-classification": "accuracy", "invasive-species-monitoring": "roc_auc",
    "imet-2020-fgvc7": "micro_f1", "seti-breakthrough-listen": "roc_auc",
    "statoil-iceberg-classifier-challenge": "log_loss", "herbarium-2022-fgvc9": "macro_f1",
    "digit-recognizer": "accuracy", "human-protein-atlas-image-classification": "macro_f1",
    "petfinder-pawpularity-score": "rmse", "whale-categorization-playground": "map_at_k"}

EVALUATION = {  # the Evaluation sections, shortened
    "aerial-cactus-identification": "Submissions are evaluated on [area under the ROC curve](http://x) between "
    "the predicted probability and the observed target.",
    "dogs-vs-cats-redux-kernels-edition": "Submissions are scored on the log loss:",
    "dog-breed-identification": "Submissions are evaluated on [Multi Class Log Loss](https://x) between the "
    "predicted probability and the observed target.",
    "histopathologic-cancer-detection": "Submissions are evaluated on [area under the ROC curve](http://x) between "
    "the predicted probability and the observed target.",
    "plant-pathology-2020-fgvc7": "Submissions are evaluated on mean column-wise ROC AUC. In other words, the score "
    "is the average of the individual AUCs of each predicted column.",
    "plant-pathology-2021-fgvc8": "The evaluation metric for this competition is [Mean F1-Score](https://x).",
    "aptos2019-blindness-detection": "Submissions are scored based on the quadratic weighted kappa, which measures "
    "the agreement between two ratings.",
    "ranzcr-clip-catheter-line-classification": "Submissions are evaluated on [area under the ROC curve](http://x) "
    "between the predicted probability and the observed target.\n\nTo calculate the final score, AUC is calculated "
    "for each of the 11 labels, then averaged.",
    "siim-isic-melanoma-classification": "Submissions are evaluated on [area under the ROC curve](http://x) between "
    "the predicted probability and the observed target.",
    "leaf-classification": "Submissions are evaluated using the multi-class logarithmic loss. Each image has been "
    "labeled with one true species.",
    "cassava-leaf-disease-classification": "#### Evaluation\n\nSubmissions will be evaluated based on their "
    "[categorization accuracy](https://x).",
    "plant-seedlings-classification": "Submissions are evaluated on **MeanFScore**,\nwhich at Kaggle is actually a "
    "[micro-averaged F1-score](https://x).",
    "paddy-disease-classification": "### Evaluation\n\nSubmissions will be evaluated based on their "
    "[categorization accuracy](https://x).",
    "invasive-species-monitoring": "Submissions are evaluated on [area under the ROC curve](http://x) between the "
    "predicted probability and the observed target.",
    "imet-2020-fgvc7": "Submissions will be evaluated based on their micro averaged [F1 score](https://x).",
    "seti-breakthrough-listen": "Submissions are evaluated on [area under the ROC curve](http://x) between the "
    "predicted probability and the observed target.",
    "statoil-iceberg-classifier-challenge": "Submissions are evaluated on the [log loss](https://x) between the "
    "predicted values and the ground truth.",
    "herbarium-2022-fgvc9": "Submissions are evaluated using the [macro F1 score](https://x).",
    "digit-recognizer": "The evaluation metric for this contest is the categorization accuracy, or the proportion "
    "of test images that are correctly classified.",
    "human-protein-atlas-image-classification": "Submissions will be evaluated based on their macro F1 score.",
    "petfinder-pawpularity-score": "#### Root Mean Squared Error $RMSE$\n\nSubmissions are scored on the root mean "
    "squared error.",
    "whale-categorization-playground": "Submissions are evaluated according to the Mean Average Precision @ 5 "
    "(MAP@5):"}


def write_description(folder: Path, slug: str) -> None:
    sub = folder / "sample_submission.csv"
    header = sub.read_text().splitlines()[0] if sub.is_file() else "id,target"  # zipped or 7z: a stand-in
    (folder / "description.md").write_text(f"# {slug}\n\n## Description\n\nA tiny replica.\n\n"
                                           f"{HEADINGS.get(slug, '## Evaluation')}\n\n{EVALUATION[slug]}\n\n"
                                           f"### Submission File\n\n```\n{header}\n```\n\n## Timeline\n\nNone.\n")


def short(error: Exception, root: Path) -> str:
    return str(error).replace(str(root) + "/", "").replace("|", "\\|")


def fold_summary(config: Competition, train, y) -> str:
    """The folds stage's assignment, in-process: method and sizes, and whether a group straddles folds."""
    ctx = SimpleNamespace(cfg=SimpleNamespace(competition=config, folds=Folds()), targets=y, train=train)
    split = split_inputs(ctx)
    needs = metric_requirements(y, config.task, config.metric, config.classes)
    folds = assign_folds(len(train), 5, 42, split.method, split.labels, split.groups, split.multihot, needs,
                         config.classes, train.source, split.group_desc)
    if config.group_col:
        per_group = train.frame.assign(fold=folds).groupby(config.group_col)["fold"].nunique()
        assert per_group.max() == 1, f"a {config.group_col} straddles folds"
    return f"OK: {split.method} {'/'.join(map(str, np.bincount(folds, minlength=5)))}"


def metric_without_description(folder: Path, grader: str) -> str:
    """The metric a Kaggle download (no description.md: only MLE-bench's folders carry one) gets."""
    (folder / "description.md").unlink()
    try:
        metric = discover_competition(folder)["metric"]
    except PipelineError as e:
        return f"refused ({str(e).split(':')[0]})"
    return metric if metric == grader else f"{metric} **MISMATCH**"


def survey(slug: str, root: Path) -> dict:
    folder = root / "input" / slug
    folder.mkdir(parents=True)
    BUILDERS[slug](folder)
    write_description(folder, slug)
    row = dict.fromkeys(COLUMNS, "")
    row.update({"competition": slug, "grader's metric": GRADER_METRIC[slug]})
    config_path = root / "configs" / f"{slug}.yaml"
    try:
        comp = write_competition_config(config_path, folder)
    except PipelineError as e:
        row.update({"inferred task": "refused", "user must set": short(e, root),
                    "without description.md": metric_without_description(folder, GRADER_METRIC[slug])})
        return row
    written = config_path.read_text()
    described = "description.md" if "# found: competition.metric:" in written else "task default"
    extra = yaml.safe_load(written)
    n = len(comp["classes"])
    row.update({"inferred task": f"{comp['task']} ({n} class{'es' if n > 1 else ''})",
                "metric (from)": f"{comp['metric']} ({described})",
                "submission format": f"{comp['submission_format']} ({len(comp['submission_columns'])} columns)",
                "group col": comp.get("group_col", "") or "-"})
    if comp["metric"] != GRADER_METRIC[slug]:
        row["grader's metric"] += " **MISMATCH**"
    try:
        config = Competition(**comp, input_dir=str(folder))
        train, test = load_train(config, root, slug), load_test(config, root, slug)
        pixels = train.samples.read(0)
        chans = extra.get("model", {}).get("in_chans", pixels.shape[2] if pixels.ndim == 3 else 1)
        row["image source / channels"] = (f"{comp.get('image_source', 'file')} {pixels.shape[0]}x{pixels.shape[1]}"
                                          f"x{chans} {pixels.dtype}; {len(train)} train / {len(test)} test")
        row["folds (5)"] = fold_summary(config, train, encode_targets(train, config))
    except (PipelineError, AssertionError) as e:
        row["folds (5)"] = "refused"
        row["user must set"] = short(e, root)
        return row
    row["without description.md"] = metric_without_description(folder, GRADER_METRIC[slug])
    row["user must set"] = ("nothing" if comp["metric"] == GRADER_METRIC[slug]
                            else f"competition.metric: the grader's {GRADER_METRIC[slug]} is not one of ours")
    return row


def main(slugs: list[str]) -> int:
    start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for slug in slugs or BUILDERS:
            rows.append(survey(slug, Path(tmp)))
    print("| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
    ok = sum(r["user must set"] == "nothing" for r in rows)
    print(f"\n{ok} of {len(rows)} infer with nothing to set; {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
