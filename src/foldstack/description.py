"""What a competition's description says about its scoring: the metric named in its Evaluation section. MLE-bench's
prepared folders carry the data and evaluation pages as description.md; a Kaggle download does not, and then the
metric is the one KNOWN_METRICS records for the folder's slug, else the task's default (set competition.metric in
configs/<comp>.yaml). A metric we do not compute (MAP@k: retrieval) is refused, not replaced by the task's default;
so is a regression metric (RMSE, MAE) for a target read as classes, or a classification metric for a numeric one."""
import re

from .errors import PipelineError

# Phrases of Kaggle evaluation pages, the more specific first; the earliest in the section names the metric.
METRIC_PHRASES = [("root mean squared error", "rmse"), ("root mean square error", "rmse"), ("rmse", "rmse"),
                  ("mean absolute error", "mae"), ("coefficient of determination", "r2"),
                  ("quadratic weighted kappa", "qwk"), ("macro f1", "macro_f1"), ("micro averaged f1", "micro_f1"),
                  ("micro-averaged f1", "micro_f1"), ("meanfscore", "micro_f1"), ("mean f1", "micro_f1"),
                  ("logarithmic loss", "log_loss"), ("log loss", "log_loss"), ("logloss", "log_loss"),
                  ("log-loss", "log_loss"), ("roc curve", "roc_auc"), ("roc auc", "roc_auc"), ("auc", "roc_auc"),
                  ("accuracy", "accuracy")]
# Phrases of metrics we do not compute: the section naming one first is refused (a default would be scored silently).
UNSUPPORTED_PHRASES = ["mean average precision", "map@"]
# The metrics that fit each task (the others are left to the task's default).
FITS = {"binary": {"roc_auc", "log_loss", "accuracy", "qwk"}, "multiclass": {"accuracy", "log_loss", "qwk",
        "macro_f1", "micro_f1", "roc_auc"}, "multilabel": {"micro_f1", "macro_f1", "log_loss", "roc_auc"},
        "regression": {"rmse", "mae", "r2"}}


# A Kaggle download has no evaluation page: the metric of the image competitions whose default would be wrong, from
# their evaluation pages, by the folder's name (the competition's slug, as `make download` names input/<slug>).
KNOWN_METRICS = {"dogs-vs-cats-redux-kernels-edition": "log_loss", "plant-pathology-2020-fgvc7": "roc_auc",
                 "aptos2019-blindness-detection": "qwk", "ranzcr-clip-catheter-line-classification": "roc_auc",
                 "statoil-iceberg-classifier-challenge": "log_loss", "herbarium-2022-fgvc9": "macro_f1",
                 "human-protein-atlas-image-classification": "macro_f1", "plant-seedlings-classification": "micro_f1",
                 "leaf-classification": "log_loss", "dog-breed-identification": "log_loss",
                 "petfinder-pawpularity-score": "rmse",
                 # a metric we do not compute (retrieval): refused, not replaced by a default
                 "whale-categorization-playground": "map@5",
                 "humpback-whale-identification": "map@5"}


def competition_metric(folder, task: str) -> tuple[str, str] | None:
    """(metric, why) from the folder's description.md, else from KNOWN_METRICS by the folder's name; None: the
    task's default."""
    from pathlib import Path

    description = Path(folder) / "description.md"
    if description.is_file():
        named = described_metric(description.read_text(errors="replace"), task)
        return None if named is None else (named[0], f"as {description} says: {named[1]!r}")
    slug = Path(folder).resolve().name
    metric = KNOWN_METRICS.get(slug)
    if metric == "map@5":
        raise PipelineError(f"{slug} is scored on {metric}, a metric foldstack does not compute (retrieval is not "
                            f"supported yet); to train on one of ours anyway, write configs/<comp>.yaml with "
                            f"competition.metric set")
    check_task_fits(metric, task, f"Kaggle's {slug}")
    if metric is None or metric not in FITS.get(task, set()):
        return None
    return metric, f"the evaluation metric of Kaggle's {slug} (no description.md here)"


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
    for phrase, metric in METRIC_PHRASES + [(p, None) for p in UNSUPPORTED_PHRASES]:
        m = re.search(rf"(?<![a-z]){re.escape(phrase)}(?![a-z])", section)
        if m:
            found.append((m.start(), metric))
    if not found:
        return None
    start, metric = min(found, key=lambda f: f[0])  # ties: the earlier (more specific) phrase, min is stable
    sentence = section[section.rfind("\n", 0, start) + 1:].split("\n")[0].strip()[:200]
    if metric is None:
        raise PipelineError(f"description.md: the competition is scored on a metric foldstack does not compute "
                            f"({sentence!r}: retrieval is not supported yet); to train on one of "
                            f"ours anyway, write configs/<comp>.yaml with competition.metric set")
    check_task_fits(metric, task, f"description.md ({sentence!r})")
    if metric not in FITS.get(task, set()):
        return None
    return metric, sentence


def check_task_fits(metric: str | None, task: str, where: str) -> None:
    """A regression metric for a target read as classes (or the reverse) is one line: the task was misread."""
    if metric is not None and (metric in FITS["regression"]) != (task == "regression"):
        raise PipelineError(f"{where} is scored on {metric}, but the target was read as a {task} task; set "
                            f"competition.task (regression: a numeric target column) in configs/<comp>.yaml")
