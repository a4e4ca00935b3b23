"""model.meta_head: competition.tabular_cols through a small MLP branch of the network, concatenated to the pooled
image features. A fixture whose label only a tabular column carries (the images are noise) is learnt with it and
not without it; the batch plumbing (TTA, mixup, row-by-row) and the refusals."""
import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from foldstack.config.training import Mixup, Model
from foldstack.data.mixup import TargetMixup
from foldstack.data.tabular import TabularEncoder
from foldstack.errors import PipelineError
from foldstack.models.factory import create_model
from foldstack.models.meta_head import meta_inputs
from foldstack.tta import build_views, forward_views

from conftest import TINY, make_all_here, make_project, run_here

SITES = {"a": "head", "b": "torso", "c": "leg"}  # the label's only carrier


def _sites(root: Path, n_train: int = 90, n_test: int = 30) -> Path:
    """input/sites/: 16x16 noise images; train.csv id,site,label; test.csv id,site; test_labels.csv."""
    folder, rng, rows = root / "input" / "sites", np.random.default_rng(0), []
    for split, n in (("train", n_train), ("test", n_test)):
        (folder / split).mkdir(parents=True)
        for i in range(n):
            ident, label = f"{split}_{i:03d}", "abc"[i % 3]
            cv2.imwrite(str(folder / split / f"{ident}.png"), rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
            rows.append(dict(split=split, id=ident, site=SITES[label], label=label))
    frame = pd.DataFrame(rows)
    train, test = frame[frame.split == "train"], frame[frame.split == "test"]
    train[["id", "site", "label"]].to_csv(folder / "train.csv", index=False)
    test[["id", "site"]].iloc[::-1].to_csv(folder / "test.csv", index=False)  # not the sample's order
    pd.DataFrame({"id": test.id, "label": "a"}).to_csv(folder / "sample_submission.csv", index=False)
    test[["id", "label"]].to_csv(folder / "test_labels.csv", index=False)
    return folder


@pytest.mark.slow
def test_the_network_learns_a_label_only_a_tabular_column_carries(tmp_path):
    root = make_project(tmp_path / "project")
    _sites(root)
    common = ["train.epochs=6", "data.img_size=16", "train.lr=1e-2", "stack.method=mean", "competition.metric=accuracy"]
    scores = {}
    for width in (0, 32):
        runs = make_all_here(root, "sites", *common, f"model.meta_head={width}")
        [oof] = [line for line in runs["03_predict.py"].stderr.splitlines() if "wrote OOF" in line]
        manifest = json.loads((root / oof.split("-> ")[-1] / "manifest.json").read_text())
        labels = pd.read_csv(root / "input" / "sites" / "test_labels.csv")
        sub = pd.read_csv(root / "submission.csv").merge(labels, on="id", suffixes=("", "_true"))
        scores[width] = manifest["metrics"]["accuracy"], float((sub.label == sub.label_true).mean())
    assert scores[0][0] < 0.6 and scores[32][0] > 0.9  # same folds: only the network differs
    assert scores[32][1] > 0.9  # test rows get their own site (test.csv in another order than the sample)


def test_the_config_refuses_a_meta_head_without_tabular_columns(tmp_path):
    root = make_project(tmp_path / "project")
    from conftest import make_competition

    make_competition(root, "c", "label")
    proc = run_here(root, "01_folds.py", "c", *TINY, "model.meta_head=16", check=False)
    assert proc.returncode != 0
    assert "model.meta_head=16 feeds competition.tabular_cols to the network, and this competition has none" in \
        proc.stderr


def test_make_predict_images_refuses_the_meta_head(tmp_path):
    from foldstack.stages import predict_images

    cfg = SimpleNamespace(model=Model(name="test_resnet", meta_head=8))
    ctx = SimpleNamespace(cfg=cfg, args=SimpleNamespace(top_k=1, images=str(tmp_path)))
    with pytest.raises(PipelineError, match=r"^make predict IMAGES= \(loose image files, no table row\) cannot give "
                                            r"the network model.meta_head's tabular columns"):
        predict_images.run(ctx)


def _net(width: int = 8, n_meta: int = 5):
    torch.manual_seed(0)
    return create_model(Model(name="test_resnet", meta_head=width), 3, meta_inputs=n_meta)


def test_net_with_a_meta_head_gives_the_same_logits_batched_or_row_by_row():
    net = _net()
    images, meta = torch.randn(4, 3, 32, 32), torch.randn(4, 5)
    with torch.no_grad():
        for _ in range(2):  # train-mode passes move the BN statistics off their init: eval must use them
            net.train()((images, meta))
        net.eval()
        batched = net((images, meta))
        rows = torch.cat([net((images[i:i + 1], meta[i:i + 1])) for i in range(4)])
        other_meta = net((images, meta.flip(0)))
    torch.testing.assert_close(batched, rows, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(batched, other_meta)  # the meta does reach the logits
    state = net.state_dict()
    assert meta_inputs(state) == 5 and meta_inputs(_net(0).state_dict()) == 0
    assert not any(k.startswith("meta.") for k in _net(0).state_dict())  # off: the keys every other model has
    assert net.head.fc.in_features == _net(0).head.fc.in_features + 8


def test_freezing_the_backbone_leaves_the_meta_branch_trainable():
    net = _net()
    net.set_backbone_trainable(False)
    assert all(p.requires_grad for p in net.meta.parameters())
    assert not any(p.requires_grad for p in net.backbone.parameters())


def test_tta_views_keep_each_rows_meta():
    seen = []

    def predict(batch):
        images, meta = batch
        seen.append((images, meta))
        return torch.softmax(images.mean((1, 2, 3))[:, None] + meta[:, :3], 1)

    images, meta = torch.randn(3, 3, 8, 8), torch.arange(12.).view(3, 4)
    views = build_views(["hflip", "vflip"], [], 1.0, 8)
    out = forward_views(predict, (images, meta), views, max_batch=4)
    assert out.shape == (3, 3, 3)
    all_meta = torch.cat([m for _, m in seen])
    torch.testing.assert_close(all_meta, meta.repeat(3, 1))  # every view: the rows' meta, unchanged, in order
    torch.testing.assert_close(torch.cat([i for i, _ in seen])[3:6], images.flip(-1))  # hflip: the images only


@pytest.mark.parametrize("mode", ["batch", "pair"])
def test_mixup_mixes_meta_with_the_images_lam_and_pairing(mode):
    np.random.seed(0)
    mix = TargetMixup(Mixup(mixup_alpha=0.4, prob=1.0, mode=mode), 3)
    images = torch.randn(4, 3, 8, 8)
    meta, target = torch.randn(4, 5), torch.eye(3)[[0, 1, 2, 0]]
    (mixed, mixed_meta), mixed_target = mix((images.clone(), meta.clone()), target)
    # the images' lam per row, read back from the mixed images: x_i = lam x_i + (1 - lam) x_{N-1-i}
    diff = (images - images.flip(0)).flatten(1)
    lam = ((mixed - images.flip(0)).flatten(1) * diff).sum(1) / (diff * diff).sum(1)
    assert 0 < lam.min() and lam.max() < 1 and (mode == "pair" or torch.allclose(lam, lam[0].expand(4)))
    torch.testing.assert_close(mixed_meta, lam[:, None] * meta + (1 - lam[:, None]) * meta.flip(0), rtol=1e-4,
                               atol=1e-5)
    torch.testing.assert_close(mixed_target, lam[:, None] * target + (1 - lam[:, None]) * target.flip(0),
                               rtol=1e-4, atol=1e-5)


def test_meta_vectors_are_the_stackers_encoding_of_each_store_row(tmp_path):
    """Missing values and categories encode as for the level-2 stacker (one TabularEncoder); test rows follow
    the store (the sample submission's order), whatever order test.csv has."""
    from foldstack.context import Context, load_config

    root = make_project(tmp_path / "project")
    folder = _sites(root, n_train=6, n_test=3)
    train = pd.read_csv(folder / "train.csv", dtype=str, keep_default_na=False)
    train.loc[1, "site"] = ""  # a missing value: a level of its own
    train.to_csv(folder / "train.csv", index=False)
    ctx = Context(root, "sites", "baseline", load_config(root, "sites", "baseline", [*TINY, "model.meta_head=4"]))
    store = ctx.images
    encoder = TabularEncoder.fit(train, {"site": "categorical"}, "train.csv")
    assert encoder.feature_names == ["site=<missing>", "site=head", "site=leg", "site=torso"]
    test = pd.read_csv(folder / "test.csv", dtype=str).set_index("id").loc[ctx.test.ids].reset_index()
    expected = np.vstack([encoder.transform(train, "train.csv"), encoder.transform(test, "test.csv")])
    np.testing.assert_array_equal(store.meta, expected)
    assert store.meta[1].tolist() == [1, 0, 0, 0] and store.meta[6].tolist() == [0, 1, 0, 0]  # test_000: a, head
    from foldstack.data.dataset import ImageDataset
    from foldstack.data.transforms import build_transforms

    (x, _), = ImageDataset(store, [7], None, build_transforms(ctx.cfg.data, False)).__getitems__([0])
    assert x[1].tolist() == store.meta[7].tolist() and x[0].shape == (3, 32, 32)
    assert ctx.derive(model={"meta_head": 0}).images.meta is None  # a store is not shared across the setting


def test_swa_recomputes_the_meta_branchs_batchnorm_from_the_meta_batches():
    from foldstack.averaging import SWA
    from foldstack.config.training import Train

    net = _net()
    swa = SWA(net, torch.optim.SGD(net.parameters(), lr=0.1), Train(epochs=2, swa_start=0))
    swa.begin_epoch(0)
    swa.end_epoch(net, 0)
    images, meta = torch.randn(6, 3, 32, 32), torch.randn(6, 5) * 2 + 3
    averaged = swa.finalize([((images, meta), torch.zeros(6))], torch.device("cpu"))
    with torch.no_grad():
        hidden = averaged.meta[0](meta)  # what the branch's BatchNorm sees
    torch.testing.assert_close(averaged.meta[1].running_mean, hidden.mean(0), rtol=1e-4, atol=1e-5)
