"""make summary: parameters, FLOPs and speed of the configured model, without training or images."""
import json

import pytest
import torch
from conftest import TINY, make_competition, run_script
from torch import nn

from foldstack.config.loading import parse_overrides, resolve
from foldstack.engine.profile import count_flops, count_parameters, summarize
from foldstack.models.factory import create_model


def tiny_cfg(*overrides):
    return resolve([("overrides", parse_overrides([*TINY, *overrides]))])


def test_flops_match_a_hand_count():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    conv = 2 * 3 * 3 * 3 * 4 * 8 * 8  # 2 x Cin x k x k x Cout x H x W
    linear = 2 * (4 * 8 * 8) * 10  # 2 x in x out
    model.train()
    assert count_flops(model, 8) == conv + linear
    assert model.training  # the mode is restored


def test_flops_scale_with_the_image_area():
    model = create_model(tiny_cfg().model, 3)
    ratio = count_flops(model, 64) / count_flops(model, 32)
    assert 3.5 < ratio < 4.5


def test_parameters_and_frozen_backbone():
    cfg = tiny_cfg("train.freeze_epochs=1")
    model = create_model(cfg.model, 3)
    total = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == (total, total)
    s = summarize(cfg, 3, speed=False)
    assert s["params_total"] == s["params_trainable"] == total
    head = sum(p.numel() for p in model.head.parameters()) + sum(p.numel() for p in model.pool.parameters())
    assert s["params_trainable_frozen"] == head < total
    assert s["feature_width"] == model.num_features and s["infer_images_per_s"] is None
    assert s["gmacs"] == pytest.approx(s["gflops"] / 2)


def test_summary_script_end_to_end(tmp_path):
    make_competition(tmp_path, "c", "label")
    exp = tmp_path / "configs" / "exp"
    exp.mkdir(parents=True)
    (exp / "wide.yaml").write_text("model:\n  pool: dual\n")  # avg + max: twice the features
    proc = run_script(tmp_path, "summary.py", "c", *TINY, extra=["--all-experiments", "--seconds", "0.2"])
    print(proc.stdout)
    table = proc.stdout.splitlines()
    assert table[0].split()[:4] == ["experiment", "model", "img", "params"] and "GFLOPs" in table[0]
    assert [line.split()[0] for line in table[2:4]] == ["baseline", "wide"]
    assert not (tmp_path / "cache").exists()  # no image was decoded
    base, s = (json.loads((tmp_path / "summary" / "c" / f"{e}.json").read_text()) for e in ("baseline", "wide"))
    model = create_model(tiny_cfg("model.pool=dual").model, 3)
    n = sum(p.numel() for p in model.parameters())
    assert s["params_total"] == n and s["img_size"] == 32 and s["experiment"] == "wide"
    assert s["feature_width"] == 2 * base["feature_width"] == model.num_features
    assert s["infer_images_per_s"] > 0 and s["train_images_per_s"] > 0 and s["flops"] > 0
    assert s["torch"] == torch.__version__ and s["device"] == "cpu" and s["threads"] >= 1
    assert len(s["model_key"]) == 12 and s["model_key"] != base["model_key"]
