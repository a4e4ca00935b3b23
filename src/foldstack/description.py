"""What a competition's description says about its scoring: the metric named in its Evaluation section. MLE-bench's
prepared folders carry the data and evaluation pages as description.md; a Kaggle download does not, and then the
metric is the one Kaggle's API names (recorded by `make download`, kaggle.record_metric), else the one
KNOWN_METRICS records for the folder's slug, else the task's default (set competition.metric in
configs/<comp>.yaml). A metric that does not fit the target as read is refused, not replaced by the task's default:
a regression metric (RMSE, MAE) for a target read as classes, a classification metric for a numeric one, MAP@k
(a ranking of one label per row) for anything but a single-label multiclass target."""
import json
import re

from .errors import PipelineError

# Phrases of Kaggle evaluation pages, the more specific first; the earliest in the section names the metric.
METRIC_PHRASES = [("root mean squared error", "rmse"), ("root mean square error", "rmse"), ("rmse", "rmse"),
                  ("mean absolute error", "mae"), ("coefficient of determination", "r2"),
                  ("quadratic weighted kappa", "qwk"), ("macro f1", "macro_f1"), ("micro averaged f1", "micro_f1"),
                  ("micro-averaged f1", "micro_f1"), ("meanfscore", "micro_f1"), ("mean f1", "micro_f1"),
                  ("logarithmic loss", "log_loss"), ("log loss", "log_loss"), ("logloss", "log_loss"),
                  ("log-loss", "log_loss"), ("roc curve", "roc_auc"), ("roc auc", "roc_auc"), ("auc", "roc_auc"),
                  ("mean average precision", "map_at_k"), ("map@", "map_at_k"), ("accuracy", "accuracy")]
# The metrics that fit each task (the others are left to the task's default).
FITS = {"binary": {"roc_auc", "log_loss", "accuracy", "qwk"}, "multiclass": {"accuracy", "log_loss", "qwk",
        "macro_f1", "micro_f1", "roc_auc", "map_at_k"}, "multilabel": {"micro_f1", "macro_f1", "log_loss", "roc_auc"},
        "regression": {"rmse", "mae", "r2"}}


# Kaggle API evaluationMetric names, squeezed (lower case, letters, digits and @ only), the more specific first.
API_METRICS = [("quadraticweightedkappa", "qwk"), ("kappa", "qwk"), ("macrof1", "macro_f1"), ("macrofscore", "macro_f1"),
               ("microf1", "micro_f1"), ("meanfscore", "micro_f1"), ("meanf1", "micro_f1"), ("multiclassloss", "log_loss"),
               ("logarithmicloss", "log_loss"), ("logloss", "log_loss"), ("rootmeansquarederror", "rmse"),
               ("rmse", "rmse"), ("meanabsoluteerror", "mae"), ("mae", "mae"), ("coefficientofdetermination", "r2"),
               ("map@", "map_at_k"), ("meanaverageprecision", "map_at_k"), ("auc", "roc_auc"),
               ("accuracy", "accuracy")]
KAGGLE_METRIC_FILE = ".kaggle_metric.json"  # written by make download (kaggle.record_metric)

# A Kaggle download has no evaluation page: the metric of the image competitions whose default would be wrong, from
# their evaluation pages, by the folder's name (the competition's slug, as `make download` names input/<slug>).
KNOWN_METRICS = {"dogs-vs-cats-redux-kernels-edition": "log_loss", "plant-pathology-2020-fgvc7": "roc_auc",
                 "aptos2019-blindness-detection": "qwk", "ranzcr-clip-catheter-line-classification": "roc_auc",
                 "statoil-iceberg-classifier-challenge": "log_loss", "herbarium-2022-fgvc9": "macro_f1",
                 "human-protein-atlas-image-classification": "macro_f1", "plant-seedlings-classification": "micro_f1",
                 "leaf-classification": "log_loss", "dog-breed-identification": "log_loss",
                 "petfinder-pawpularity-score": "rmse", "whale-categorization-playground": "map_at_k",
                 "humpback-whale-identification": "map_at_k"}


def competition_metric(folder, task: str) -> tuple[str, str] | None:
    """(metric, why) from the folder's description.md, else from KNOWN_METRICS by the folder's name; None: the
    task's default."""
    from pathlib import Path

    description = Path(folder) / "description.md"
    if description.is_file():
        named = described_metric(description.read_text(errors="replace"), task)
        return None if named is None else (named[0], f"as {description} says: {named[1]!r}")
    recorded = Path(folder) / KAGGLE_METRIC_FILE
    if recorded.is_file():
        return api_metric(recorded, task)
    slug = Path(folder).resolve().name
    metric = KNOWN_METRICS.get(slug)
    check_task_fits(metric, task, f"Kaggle's {slug}")
    if metric is None or metric not in FITS.get(task, set()):
        return None
    return metric, f"the evaluation metric of Kaggle's {slug} (no description.md here)"


def api_metric(path, task: str) -> tuple[str, str] | None:
    """(metric, why) from the evaluation metric Kaggle's API named (make download's record, kaggle.record_metric):
    its name matched without case, spaces or punctuation ('CategorizationAccuracy', 'Macro F1 Score', 'MAP@{K}').
    A name we do not compute is one line, not the task's default."""
    try:
        name = str(json.loads(path.read_text())["evaluation_metric"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PipelineError(f"{path}: unreadable ({e.__class__.__name__}); delete it, or rerun make download") from None
    squeezed = re.sub(r"[^a-z0-9@]", "", name.lower())
    metric = next((metric for key, metric in API_METRICS if key in squeezed), None)
    if metric is None:
        raise PipelineError(f"{path}: Kaggle scores this competition on {name!r}, which foldstack does not compute; "
                            f"delete that file to infer the task's default metric, then set competition.metric in "
                            f"configs/<comp>.yaml to the closest of {sorted({m for _, m in API_METRICS})}")
    check_task_fits(metric, task, f"Kaggle's API ({name!r})")
    if metric not in FITS.get(task, set()):
        return None
    return metric, f"Kaggle's API names the evaluation metric {name!r} ({path.name}, written by make download)"


def evaluation_section(text: str) -> str:
    """The Evaluation section of a description (from its heading to the next heading of its level or above), or ''."""
    m = re.search(r"^(#+)\s*\**\s*evaluation\b.*$", text, flags=re.I | re.M)  # SETI's: ## **Evaluation**
    if not m:
        return ""
    rest = text[m.end():]
    end = re.search(rf"^#{{1,{len(m.group(1))}}}\s+(?!\**\s*evaluation\b)\S", rest, flags=re.I | re.M)
    return rest[:end.start()] if end else rest


def described_metric(text: str, task: str) -> tuple[str, str] | None:
    """(metric, the sentence naming it) from the Evaluation section, when it names one of ours that fits the task;
    a section that names a metric we do not compute first is one line."""
    # a link's text only: "micro averaged [F1 score](url)" (imet) names micro_f1
    section = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", evaluation_section(text)).lower().replace("**", "")
    found = []
    for phrase, metric in METRIC_PHRASES:
        m = re.search(rf"(?<![a-z]){re.escape(phrase)}(?![a-z])", section)
        if m:
            found.append((m.start(), metric))
    if not found:
        return None
    start, metric = min(found, key=lambda f: f[0])  # ties: the earlier (more specific) phrase, min is stable
    sentence = section[section.rfind("\n", 0, start) + 1:].split("\n")[0].strip()[:200]
    check_task_fits(metric, task, f"description.md ({sentence!r})")
    if metric not in FITS.get(task, set()):
        return None
    return metric, sentence


def check_task_fits(metric: str | None, task: str, where: str) -> None:
    """A regression metric for a target read as classes (or the reverse), or MAP@k for a target that is not one
    class per row, is one line: the task was misread."""
    if metric == "map_at_k" and task != "multiclass":
        raise PipelineError(f"{where} is scored on MAP@k, a ranking of the classes of one label per row, but the "
                            f"target was read as a {task} task; set competition.task, metric and submission_format "
                            f"in configs/<comp>.yaml")
    if metric is not None and (metric in FITS["regression"]) != (task == "regression"):
        raise PipelineError(f"{where} is scored on {metric}, but the target was read as a {task} task; set "
                            f"competition.task (regression: a numeric target column) in configs/<comp>.yaml")
