"""What a competition's description says about its scoring: the metric named in its Evaluation section. MLE-bench's
prepared folders carry the data and evaluation pages as description.md; a Kaggle download does not, and then the
metric is the task's default (set competition.metric in configs/<comp>.yaml)."""
import re

# Phrases of Kaggle evaluation pages, the more specific first; the earliest in the section names the metric.
METRIC_PHRASES = [("quadratic weighted kappa", "qwk"), ("macro f1", "macro_f1"), ("micro averaged f1", "micro_f1"),
                  ("micro-averaged f1", "micro_f1"), ("meanfscore", "micro_f1"), ("mean f1", "micro_f1"),
                  ("logarithmic loss", "log_loss"), ("log loss", "log_loss"), ("logloss", "log_loss"),
                  ("log-loss", "log_loss"), ("roc curve", "roc_auc"), ("roc auc", "roc_auc"), ("auc", "roc_auc"),
                  ("accuracy", "accuracy")]
# The metrics that fit each task (the others are left to the task's default).
FITS = {"binary": {"roc_auc", "log_loss", "accuracy", "qwk"}, "multiclass": {"accuracy", "log_loss", "qwk",
        "macro_f1", "micro_f1", "roc_auc"}, "multilabel": {"micro_f1", "macro_f1", "log_loss", "roc_auc"}}


def evaluation_section(text: str) -> str:
    """The Evaluation section of a description (from its heading to the next heading of its level or above), or ''."""
    m = re.search(r"^(#+)\s*evaluation\b.*$", text, flags=re.I | re.M)
    if not m:
        return ""
    rest = text[m.end():]
    end = re.search(rf"^#{{1,{len(m.group(1))}}}\s+(?!evaluation\b)\S", rest, flags=re.I | re.M)
    return rest[:end.start()] if end else rest


def described_metric(text: str, task: str) -> tuple[str, str] | None:
    """(metric, the sentence naming it) from the Evaluation section, when it names one of ours that fits the task."""
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
    if metric not in FITS.get(task, set()):
        return None
    sentence = section[section.rfind("\n", 0, start) + 1:].split("\n")[0].strip()
    return metric, sentence[:200]
