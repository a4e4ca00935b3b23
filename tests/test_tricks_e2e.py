"""The training tricks through the real scripts and Make targets, on tiny generated competitions."""
import json
import math
import re

import pandas as pd
import pytest
import torch
import yaml

from foldstack.context import load_config

from conftest import REPO, TINY, make_competition, make_project, run_make, train_killed_and_resumed

RECIPES = ["bag-of-tricks", "rsb", "focal-ohem", "swa", "snapshots"]
# Two epochs: the SWA recipe averages from 75% of them on, the snapshot recipe needs an even count.
TWO_EPOCHS = " ".join([o for o in TINY if not o.startswith("train.epochs")] + ["train.epochs=2"])


def fold_dirs(root, exp):
    return sorted(p.parent for p in root.glob(f"models/*/{exp}/*/fold*/manifest.json"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_configs_validate_and_every_key_they_set_is_applied(tmp_path, recipe):
    """Over digits' config and over an inferred tiny competition; TINY's overrides win over the recipe."""
    layer = yaml.safe_load((REPO / "configs" / "exp" / f"{recipe}.yaml").read_text())
    make_competition(tmp_path, "tiny", "label")
    (tmp_path / "configs" / "exp").mkdir(parents=True)
    (tmp_path / "configs" / "exp" / f"{recipe}.yaml").write_text((REPO / "configs" / "exp" / f"{recipe}.yaml").read_text())
    overridden = dict(o.split("=", 1) for o in TINY)
    for cfg, overrides in ((load_config(REPO, "digits", recipe, []), {}),
                           (load_config(tmp_path, "tiny", recipe, TINY), overridden)):
        dumped = cfg.model_dump()
        for section, keys in layer.items():
            for key, value in keys.items():
                expected = yaml.safe_load(overrides.get(f"{section}.{key}", yaml.safe_dump(value)))
                assert dumped[section][key] == expected, f"{recipe}: {section}.{key}"


@pytest.fixture(scope="module")
def recipes_project(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("recipes") / "project")
    for recipe in RECIPES:
        (root / "configs" / "exp" / f"{recipe}.yaml").write_text((REPO / "configs" / "exp" / f"{recipe}.yaml").read_text())
    make_competition(root, "tiny", "label", n_train=32)
    return root


@pytest.mark.parametrize("recipe", RECIPES)
def test_each_recipe_trains_and_predicts_through_make(recipes_project, recipe):
    root = recipes_project
    # stack and submit do not depend on the recipe: one recipe goes all the way, the others to OOF predictions
    run_make(root, "submit" if recipe == "swa" else "oof", COMP="tiny", EXP=recipe, OVERRIDES=TWO_EPOCHS)
    dirs = fold_dirs(root, recipe)
    assert len(dirs) == 2
    manifest = json.loads((dirs[0] / "manifest.json").read_text())
    recipe_cfg = load_config(root, "tiny", recipe, TWO_EPOCHS.split())
    assert manifest["config"]["train"] == recipe_cfg.train.model_dump()  # the recipe is recorded
    assert manifest["config"]["loss"] == recipe_cfg.loss.model_dump()
    files = {p.name for p in dirs[0].iterdir()}
    if recipe == "swa":
        assert "swa.pt" in files and "swa" in manifest["metrics"]
        assert torch.load(dirs[0] / "swa.pt", weights_only=True)["n_averaged"] == 1
    if recipe == "snapshots":
        assert {"snapshot_1.pt", "snapshot_2.pt"} <= files
        log = pd.read_csv(dirs[0] / "log.csv")
        assert log["lr"].iloc[1] > 0  # cosine restarted: the second cycle ends low, again
    [oof] = [p.parent for p in root.glob(f"oof/tiny/{recipe}/*/manifest.json")]
    assert json.loads((oof / "manifest.json").read_text())["config"]["predict"] == recipe_cfg.predict.model_dump()
    if recipe == "swa":
        assert len(pd.read_csv(root / "submission.csv")) == 8


def test_lr_find_writes_the_curve_and_a_suggestion(recipes_project):
    root = recipes_project
    proc = run_make(root, "lr-find", COMP="tiny", OVERRIDES=f"{TWO_EPOCHS} lr_find.steps=30")
    [folder] = [p.parent for p in root.glob("lr_find/tiny/baseline/*/manifest.json")]
    curve = pd.read_csv(folder / "lr_find.csv")
    assert (folder / "lr_find.png").stat().st_size > 1000 and 5 <= len(curve) <= 30
    assert curve["lr"].is_monotonic_increasing and curve["lr"].iloc[0] == pytest.approx(1e-7)
    suggested = json.loads((folder / "manifest.json").read_text())["metrics"]["suggested_lr"]
    assert curve["lr"].min() <= suggested <= curve["lr"].max() and "suggested lr" in proc.stderr
    assert "up to date" in run_make(root, "lr-find", COMP="tiny", OVERRIDES=f"{TWO_EPOCHS} lr_find.steps=30").stderr


def test_fine_tuning_from_another_competitions_checkpoint_with_a_frozen_backbone(recipes_project):
    """A 4-class competition starts from the 3-class one's fold checkpoint; with the backbone frozen for the only
    epoch, its backbone (weights and BN statistics) ends bit-identical to the source while the new head trains."""
    root = recipes_project
    run_make(root, "folds", "train", FOLD=0, COMP="tiny", OVERRIDES=TWO_EPOCHS)
    [source] = [d for d in fold_dirs(root, "baseline") if d.name == "fold0"]
    make_competition(root, "other", "label", classes=("a", "b", "c", "d"))
    run_make(root, "folds", "train", FOLD=0, COMP="other",
             OVERRIDES=f"{TWO_EPOCHS} model.pretrained_path={source / 'last.pt'} train.freeze_epochs=2 "
                       f"train.head_lr_mult=10")
    [target] = [d for d in root.glob("models/other/baseline/*/fold0")]
    src = torch.load(source / "last.pt", weights_only=True)["model"]
    dst = torch.load(target / "last.pt", weights_only=True)["model"]
    backbone = [k for k in dst if k.startswith("backbone.")]
    assert backbone and all(torch.equal(src[k], dst[k]) for k in backbone)
    head = [k for k in dst if not k.startswith("backbone.") and dst[k].ndim == 2]
    assert head and all(dst[k].shape[0] == 4 and src[k].shape[0] == 3 for k in head)


def test_killed_training_with_swa_mixup_ema_snapshots_resumes_bit_identical(tmp_path):
    """kill -9 mid-run after SWA has started; the rerun ends with the same weights, SWA average, EMA and snapshots
    as an uninterrupted run."""
    settings = [o for o in TINY if not o.startswith("train.epochs")] + [
        "train.epochs=12", "train.swa=true", "train.swa_start=6", "train.swa_anneal_epochs=2",
        "mixup.mixup_alpha=0.4", "mixup.cutmix_alpha=1.0", "mixup.off_epoch=10", "train.ema=true",
        "train.ema_decay=0.9", "train.cycles=3", "train.snapshots=true", "train.accum_steps=2",
        "data.multiscale=[24,32]", "loss.name=focal"]
    fold_a, fold_b, _ = train_killed_and_resumed(tmp_path, settings, kill_after_epochs=8)
    assert pd.read_csv(fold_b / "log.csv")["epoch"].tolist() == list(range(1, 13))
    last_a, last_b = (torch.load(f / "last.pt", weights_only=True) for f in (fold_a, fold_b))
    for part in ("model", "ema"):
        assert all(torch.equal(last_a[part][k], last_b[part][k]) for k in last_a[part]), part
    assert last_a["swa"]["averaged"]["n_averaged"] == 6
    for name in ("swa.pt", "snapshot_1.pt", "snapshot_2.pt", "snapshot_3.pt", "best.pt"):
        a, b_ = (torch.load(f / name, weights_only=True)["model"] for f in (fold_a, fold_b))
        assert all(torch.equal(a[k], b_[k]) for k in a), name


def test_bench_prints_pipeline_and_ceiling_figures(recipes_project):
    """make bench: a table with train/inference images/s and their ratio of the ceiling (figures not asserted)."""
    proc = run_make(recipes_project, "bench", COMP="tiny", OVERRIDES=TWO_EPOCHS,
                    BENCH_ARGS="--steps 1 --rounds 2 --warmup 1 --epoch")
    assert "\ntiny: test_resnet at 32px, batch 8, on cpu (" in proc.stdout  # TINY's settings, measured
    rows = [[cell.strip() for cell in line.split("|")[1:5]] for line in proc.stdout.splitlines()
            if line.startswith(("| train", "| inference"))]
    assert [(r[0], r[1].split(" (")[0]) for r in rows] == [("train", "ceiling"), ("train", "pipeline"),
                                                           ("inference", "ceiling"), ("inference", "pipeline")]
    assert rows[1][1] == "pipeline (0 workers)" and rows[0][3] == rows[2][3] == "1.00"  # ratios of the ceiling
    assert all(math.isfinite(float(r[2])) and math.isfinite(float(r[3])) for r in rows)
    # fold 0 of 2 trains on half of the 32 rows
    assert re.search(r"one training epoch \(fold 0, 16 images\): [0-9.]+ s", proc.stdout), proc.stdout
    assert "peak host (RSS) memory" in proc.stdout
