"""Data-parallel training for real: 2 CPU processes on the gloo backend, then `make train GPUS=2` under torchrun."""
import json
import os
import socket

import numpy as np
import pandas as pd
import torch
import torch.multiprocessing as mp

from conftest import TINY, make_competition, make_project, run_make, write_png

# A model without BatchNorm (per-rank batch statistics would make the halves differ from the whole batch) and SGD
# (Adam's first step is lr * sign(grad): float noise in a near-zero gradient would flip whole updates).
NO_BN = {"model": {"name": "test_convnext"}, "data": {"img_size": 32, "batch_size": 8, "augment": "none",
                                                       "hflip": False},
         "train": {"optimizer": "sgd", "lr": 0.5, "warmup_epochs": 0}, "runtime": {"num_workers": 0, "device": "cpu"}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_step(folder: str) -> tuple[dict, int]:
    """Fold 0's first batch through the engine's real step (build_fold, forward_backward, optimizer_step): the
    weights after it and the number of images this process saw."""
    from foldstack.config.schema import Config
    from foldstack.data.dataset import reseed_epoch
    from foldstack.data.images import ImageStore
    from foldstack.engine.fold import build_fold
    from foldstack.engine.step import batch_to_device, forward_backward, optimizer_step

    paths = sorted(p.path for p in os.scandir(folder) if p.name.endswith(".png"))
    y = np.eye(3, dtype=np.float32)[np.arange(len(paths)) % 3]
    folds = np.arange(len(paths)) % 2
    cfg = Config.model_validate(NO_BN)
    f = build_fold(cfg, ImageStore(paths, len(paths)), y, folds, 0, folder)
    reseed_epoch(f.train_loader, 0)
    x, target = next(iter(f.train_loader))
    f.model.train()
    forward_backward(f, cfg, *batch_to_device(f, cfg, x, target))
    optimizer_step(f, cfg)
    return {k: v.detach().clone() for k, v in f.model.state_dict().items()}, len(x)


def ddp_rank(rank: int, world: int, port: int, folder: str) -> None:
    from foldstack import distributed

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    weights, n = one_step(folder)
    torch.save({**weights, "images": torch.tensor(n)}, os.path.join(folder, f"rank{rank}.pt"))
    distributed.cleanup()


def test_a_ddp_step_on_two_processes_equals_one_step_on_the_combined_batch(tmp_path):
    for i in range(20):
        write_png(tmp_path / f"img{i:02d}.png", (20 * (i % 3), 90, 160), i)
    mp.spawn(ddp_rank, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    single, n = one_step(str(tmp_path))  # no torchrun variables: one process, the whole batch of 8
    assert n == 8 and [int(r.pop("images")) for r in ranks] == [4, 4]  # each rank: its half
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in single)  # the ranks agree bit for bit
    assert all(torch.allclose(ranks[0][k], single[k], atol=1e-6, rtol=1e-5) for k in single)

    from foldstack.config.schema import Config
    from foldstack.models.factory import create_model
    from foldstack.utils.seed import seed_everything

    cfg = Config.model_validate(NO_BN)
    seed_everything(cfg.train.seed)  # fold 0's initial weights: the step did move them
    init = create_model(cfg.model, 3).state_dict()
    assert any(not torch.allclose(init[k], single[k]) for k in single if single[k].is_floating_point())


def test_make_train_gpus_2_runs_one_fold_under_torchrun_and_rank_0_writes_once(tmp_path):
    """`make train FOLD=0 GPUS=2` on CPU (gloo): one complete fold, validated on all its rows, resumable."""
    root = make_project(tmp_path / "p")
    make_competition(root, "tiny", "label")
    overrides = " ".join([*TINY, "train.epochs=2"])
    proc = run_make(root, "train", COMP="tiny", FOLD="0", GPUS="2", OVERRIDES=overrides)
    [fold] = (root / "models" / "tiny" / "baseline").glob("*/fold0")
    manifest = json.loads((fold / "manifest.json").read_text())
    folds = pd.read_csv(next((root / "folds" / "tiny").glob("*/folds.csv")))["fold"].to_numpy()
    assert manifest["metrics"]["valid_rows"] == int((folds == 0).sum())  # both ranks' shares gathered
    assert manifest["metrics"]["epochs"] == 2 and (fold / "log.csv").read_text().count("\n") == 3
    assert proc.stderr.count("training fold 0") == 1  # only rank 0 logs
    assert not (fold.parent / "fold1").exists()
    # As a kill after the last checkpoint leaves it: the work folder without a manifest. Every rank resumes from it.
    (fold / "manifest.json").unlink()
    fold.rename(fold.parent / ".fold0.partial")
    before = torch.load(fold.parent / ".fold0.partial" / "last.pt", weights_only=True)["model"]
    proc = run_make(root, "train", COMP="tiny", FOLD="0", GPUS="2", OVERRIDES=overrides)
    assert "resuming after epoch 2 of 2" in proc.stderr and (fold / "manifest.json").is_file()
    after = torch.load(fold / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_make_train_j2_devices_trains_folds_in_parallel_like_one_after_another(tmp_path):
    """`make train -j2 DEVICES="0 1"`: fold k on device k mod 2 (CUDA_VISIBLE_DEVICES); same weights as in turn."""
    roots = [make_project(tmp_path / name) for name in ("serial", "parallel")]
    for root in roots:
        make_competition(root, "tiny", "label")
    overrides = " ".join(TINY)
    run_make(roots[0], "train", COMP="tiny", OVERRIDES=overrides)
    proc = run_make(roots[1], "train", "-j2", COMP="tiny", DEVICES="0 1", OVERRIDES=overrides)
    assert "CUDA_VISIBLE_DEVICES=0" in proc.stdout and "CUDA_VISIBLE_DEVICES=1" in proc.stdout
    for k in (0, 1):
        [a], [b] = (list((r / "models" / "tiny" / "baseline").glob(f"*/fold{k}")) for r in roots)
        assert (b / "manifest.json").is_file() and a.parent.name == b.parent.name
        wa = torch.load(a / "last.pt", weights_only=True)["model"]
        wb = torch.load(b / "last.pt", weights_only=True)["model"]
        assert all(torch.equal(wa[x], wb[x]) for x in wa)
    assert len(list((roots[1] / "cache" / "tiny").iterdir())) == 1  # built once, before the folds started
