"""The Kaggle side of a bundle: the dataset's and kernel's ids, their metadata files for the kaggle CLI, the kernel
script filled in from its template, and its notebook.

Ids are <user>/<slug>: the user from the credentials (or --kaggle-user), the slugs from the competition's name
and the bundle's hash (or --dataset-id / --kernel-id). A kernel's title is its slug, so Kaggle keeps the id."""
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import PipelineError
from ..kaggle import check_slug, kaggle_username

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{4,48}[a-z0-9]$")  # Kaggle: 6 to 50 characters for a dataset
USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
TEMPLATE = Path(__file__).with_name("inference.py")
TEMPLATE_LINE = "BUNDLE = {}  # filled by make bundle"
SCRIPT, NOTEBOOK = "inference.py", "inference.ipynb"
DATASET_METADATA, KERNEL_METADATA = "dataset-metadata.json", "kernel-metadata.json"


@dataclass(frozen=True)
class KaggleIds:
    dataset: str      # <user>/<slug>
    kernel: str       # <user>/<slug>
    competition: str  # the competition's slug: the kernel's competition source


def default_slug(comp: str, key: str, suffix: str = "") -> str:
    """<comp>-<key>[-suffix] in Kaggle's slug alphabet, the name cut to keep it within 50 characters."""
    name = re.sub(r"[^a-z0-9]+", "-", comp.lower()).strip("-")[:30].strip("-") or "bundle"
    return f"{name}-{key}{suffix}"


def _checked_id(value: str, flag: str) -> str:
    user, _, slug = value.partition("/")
    if not USER.match(user) or not SLUG.match(slug):
        raise PipelineError(f"{flag} {value!r}: expected <kaggle user>/<slug>, the slug 6-50 characters of a-z, 0-9 "
                            f"and '-'")
    return value


def kaggle_ids(comp: str, key: str, user: str | None = None, dataset: str | None = None,
               kernel: str | None = None, competition: str | None = None) -> KaggleIds:
    """The ids a bundle's metadata names: given ones as they are (checked), the others from the user name
    (given, else the credentials') and default slugs."""
    if dataset is None or kernel is None:
        user = user or kaggle_username()
        if not user:
            raise PipelineError("no Kaggle user name for the dataset and kernel ids: pass --kaggle-user (make bundle "
                                "KAGGLE_USER=<name>) or set up the Kaggle credentials (KAGGLE_USERNAME, or "
                                "kaggle.json with its username)")
    dataset = dataset or f"{user}/{default_slug(comp, key)}"
    kernel = kernel or f"{user}/{default_slug(comp, key, '-kernel')}"
    try:
        competition = check_slug(competition or comp)
    except PipelineError:
        raise PipelineError(f"{competition or comp!r} is not a Kaggle competition slug: pass --competition "
                            f"<slug> (the last part of kaggle.com/competitions/<slug>)") from None
    return KaggleIds(_checked_id(dataset, "--dataset-id"), _checked_id(kernel, "--kernel-id"), competition)


def dataset_metadata(ids: KaggleIds) -> dict:
    slug = ids.dataset.split("/")[1]
    return {"title": slug, "id": ids.dataset, "licenses": [{"name": "other"}]}


def kernel_metadata(ids: KaggleIds, gpu: bool) -> dict:
    slug = ids.kernel.split("/")[1]
    return {"id": ids.kernel, "title": slug, "code_file": NOTEBOOK, "language": "python", "kernel_type": "notebook",
            "is_private": True, "enable_gpu": gpu, "enable_tpu": False, "enable_internet": False,
            "dataset_sources": [ids.dataset], "competition_sources": [ids.competition], "kernel_sources": [],
            "model_sources": []}


def kernel_script(values: dict) -> str:
    """The template with its BUNDLE line filled in (string values only: the line is a valid Python literal)."""
    template = TEMPLATE.read_text()
    if template.count(TEMPLATE_LINE) != 1:
        raise PipelineError(f"internal: {TEMPLATE} must hold the line {TEMPLATE_LINE!r} once")
    return template.replace(TEMPLATE_LINE, f"BUNDLE = {json.dumps(values, sort_keys=True)}  # filled by make bundle")


def notebook(source: str) -> dict:
    """A minimal nbformat 4 notebook: the script as its one code cell."""
    lines = source.splitlines(keepends=True)
    return {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                       "source": lines}],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 4}
