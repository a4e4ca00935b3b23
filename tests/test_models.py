import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from foldstack.config.training import Model
from foldstack.errors import PipelineError
from foldstack.metrics import is_better, score
from foldstack.checkpoints import load_checkpoint
from foldstack.models.factory import create_model
from foldstack.models.net import set_backbone_trainable
from foldstack.models.pooling import GeM

TINY = "test_resnet"  # timm's tiny ResNet: 96 features, builds in milliseconds


def images(n=4, seed=0):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def perturbed(state: dict) -> dict:
    """Source weights that cannot equal a fresh initialisation by chance (BN buffers included)."""
    g = torch.Generator().manual_seed(1)
    return {k: v + torch.rand(v.shape, generator=g) if v.is_floating_point() else v + 5 for k, v in state.items()}


@pytest.mark.parametrize("form", ["pth", "safetensors", "wrapped"])
def test_pretrained_weights_from_a_local_file_with_another_head(tmp_path, form):
    source = perturbed(timm.create_model(TINY, num_classes=7).state_dict())  # has fc.* (7 classes)
    path = tmp_path / f"weights.{'safetensors' if form == 'safetensors' else 'pth'}"
    if form == "safetensors":
        save_file(source, str(path))
    elif form == "pth":
        torch.save(source, path)
    else:  # a training script's checkpoint: {"state_dict": ...} with DataParallel's "module." prefix
        torch.save({"state_dict": {f"module.{k}": v for k, v in source.items()}, "epoch": 9}, path)
    model = create_model(Model(name=TINY, pretrained_path=str(path)), num_classes=3)
    backbone = model.backbone.state_dict()
    assert len(backbone) == len(source) - 2 and all(torch.equal(v, source[k]) for k, v in backbone.items())
    assert model.head.fc.weight.shape == (3, model.num_features)
    assert model.eval()(images(1)).shape == (1, 3)


@pytest.mark.parametrize("with_ema", [False, True])
def test_fine_tune_from_a_checkpoint_of_another_competition(tmp_path, with_ema):
    source = create_model(Model(name=TINY), num_classes=7)
    weights = perturbed(source.state_dict())
    ema = {k: v * 2 if v.is_floating_point() else v for k, v in weights.items()} if with_ema else None
    torch.save({"model": weights, "ema": ema, "optimizer": {}, "epoch": 3}, tmp_path / "last.pt")
    model = create_model(Model(name=TINY, pretrained_path=str(tmp_path / "last.pt")), num_classes=3)
    expected = ema if with_ema else weights  # predictions use the EMA, so fine-tuning starts from it too
    assert all(torch.equal(v, expected[f"backbone.{k}"]) for k, v in model.backbone.state_dict().items())
    fresh = create_model(Model(name=TINY), num_classes=3).head.fc
    assert model.head.fc.weight.shape == (3, model.num_features) == fresh.weight.shape
    assert model.head.fc.weight.abs().max() <= fresh.weight.abs().max() * 1.5  # fresh init scale, not trained
    assert model.eval()(images(2)).shape == (2, 3)
    assert model.pretrained == dict(path=str(tmp_path / "last.pt"), loaded=model.pretrained["total"],
                                    total=model.pretrained["total"], missing=0, first_missing=[],
                                    unused=2)  # the old head: weight and bias
    # our checkpoint back into a Net of the same config, head included
    same = create_model(Model(name=TINY), num_classes=7)
    same.load_state_dict(load_checkpoint(tmp_path / "last.pt")["model"])
    assert all(torch.equal(v, weights[k]) for k, v in same.state_dict().items())


def test_partial_weights_are_named_and_recorded(tmp_path, caplog):
    """Under 10% missing loads (e.g. a file without the last stage's BN statistics), but never silently."""
    state = create_model(Model(name=TINY), num_classes=7).backbone.state_dict()
    dropped = [k for k in state if k.endswith("running_var")][:2]
    torch.save({k: v for k, v in state.items() if k not in dropped}, tmp_path / "partial.pth")
    with caplog.at_level("WARNING", logger="foldstack"):
        model = create_model(Model(name=TINY, pretrained_path=str(tmp_path / "partial.pth")), num_classes=3)
    report = model.pretrained
    assert report["missing"] == 2 and report["first_missing"] == dropped
    assert report["loaded"] == report["total"] - 2
    assert f"{report['loaded']} of {report['total']} backbone tensors loaded" in caplog.text
    assert all(name in caplog.text for name in dropped)
    assert create_model(Model(name=TINY), num_classes=3).pretrained is None


def test_an_original_release_is_converted_by_timms_own_loading(tmp_path):
    """A file in another layout than timm's (here open_clip's ConvNeXt: visual.trunk.*, visual.head.proj) fits no
    key as it is; timm.create_model(pretrained=True, pretrained_cfg_overlay=dict(file=...)) converts it with the
    architecture's converter, and the backbone gets its tensors bit for bit."""
    timm_state = perturbed(timm.create_model("test_convnext").state_dict())
    release = {f"visual.trunk.{k}": v for k, v in timm_state.items() if not k.startswith("head.fc.")}
    release["visual.head.proj.weight"] = timm_state["head.fc.weight"]
    save_file(release, str(tmp_path / "open_clip.safetensors"))
    model = create_model(Model(name="test_convnext", pretrained_path=str(tmp_path / "open_clip.safetensors")), 3)
    backbone = model.backbone.state_dict()
    assert set(backbone) == {k for k in timm_state if not k.startswith("head.fc.")}
    assert all(torch.equal(v, timm_state[k]) for k, v in backbone.items())
    assert model.pretrained["loaded"] == model.pretrained["total"] and model.pretrained["unused"] == 2  # head.fc


def test_weights_that_do_not_fit_name_the_file_and_key(tmp_path):
    torch.save(timm.create_model("test_efficientnet").state_dict(), tmp_path / "effnet.pth")
    with pytest.raises(PipelineError, match=r"effnet\.pth does not fit test_resnet: bn1\.weight has shape"):
        create_model(Model(name=TINY, pretrained_path=str(tmp_path / "effnet.pth")), 3)
    state = timm.create_model(TINY).state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(5, 5, 1, 1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(PipelineError, match=r"bad\.pth does not fit test_resnet: layer1\.0\.conv1\.weight has shape"):
        create_model(Model(name=TINY, pretrained_path=str(tmp_path / "bad.pth")), 3)


def test_model_errors_are_named(tmp_path):
    with pytest.raises(PipelineError, match="unknown timm model 'resnet_nope'"):
        create_model(Model(name="resnet_nope"), 2)
    with pytest.raises(PipelineError, match="pretrained_path: file not found"):
        create_model(Model(name=TINY, pretrained_path=str(tmp_path / "none.pth")), 2)
    for task in ("binary", "multilabel"):
        with pytest.raises(PipelineError, match="model.head=arcface needs a multiclass task"):
            create_model(Model(name=TINY, head="arcface"), 1, task)
    assert "test_vit" in timm.list_models("test_*")
    with pytest.raises(PipelineError, match=r"model.pool=max needs a CNN with a 2-D feature map; test_vit gives shape"):
        create_model(Model(name="test_vit", pool="max"), 2)
    assert create_model(Model(name="test_vit"), 2).eval()(torch.randn(1, 3, 160, 160)).shape == (1, 2)  # avg: fine


def test_dual_pooling_doubles_the_feature_width():
    avg = create_model(Model(name=TINY), 3)
    dual = create_model(Model(name=TINY, pool="dual"), 3).eval()
    assert dual.num_features == dual.head.fc.in_features == 2 * avg.num_features == 192
    fmap = dual.backbone(images())
    assert fmap.ndim == 4 and fmap.shape[1] == avg.num_features
    pooled = dual.pool(fmap)
    assert pooled.shape == (4, 192)
    assert torch.allclose(pooled, torch.cat([fmap.mean((2, 3)), fmap.amax((2, 3))], 1))
    assert dual(images()).shape == (4, 3)
    maxed = create_model(Model(name=TINY, pool="max"), 3).eval()
    assert maxed.num_features == 96 and torch.equal(maxed.pool(fmap), fmap.amax((2, 3)))


def test_gem_spans_average_to_max_and_learns_p():
    x = torch.rand(2, 8, 6, 6, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(GeM(p=1.0)(x), x.mean((2, 3)), atol=1e-6)
    high = GeM(p=200.0)(x)
    assert (high <= x.amax((2, 3)) + 1e-6).all() and torch.allclose(high, x.amax((2, 3)), rtol=0.03)
    mid = GeM(p=3.0)(x)
    assert (mid > x.mean((2, 3))).all() and (mid < high).all()
    model = create_model(Model(name=TINY, pool="gem", gem_p=4.0), 3)
    assert model.pool.p.item() == 4.0 and model.num_features == 96
    assert any(q is model.pool.p for q in model.parameters())  # the optimizer sees p
    # p learns: on a feature map that is not constant (a fresh model's can be, dead ReLUs), p gets a gradient
    model.pool(x).sum().backward()
    assert model.pool.p.grad is not None and model.pool.p.grad.abs().item() > 0


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _step(model, opt, seed):
    opt.zero_grad(set_to_none=False)  # zero (not None) grads: the harder case for freezing
    F.cross_entropy(model(images(8, seed)), torch.arange(8) % 3).backward()
    opt.step()


def test_frozen_backbone_does_not_move_and_unfreezing_resumes():
    model = create_model(Model(name=TINY), 3)
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1)
    model.train()
    _step(model, opt, 0)  # optimizer state (momentum) exists for the backbone before it is frozen
    model.train()
    set_backbone_trainable(model, False)
    backbone, head = _snapshot(model.backbone), _snapshot(model.head)
    model.train()  # the engine's next epoch: a frozen backbone stays in eval mode
    assert model.training and model.head.training and not model.backbone.training
    assert not any(p.requires_grad for p in model.backbone.parameters())
    _step(model, opt, 1)
    after = model.backbone.state_dict()
    assert all(torch.equal(after[k], v) for k, v in backbone.items())  # weights AND BN buffers, bit for bit
    assert not torch.equal(model.head.fc.weight, head["fc.weight"])

    set_backbone_trainable(model, True)
    assert model.backbone.training and all(p.requires_grad for p in model.backbone.parameters())
    _step(model, opt, 2)
    after = model.backbone.state_dict()
    assert not torch.equal(after["conv1.0.weight"], backbone["conv1.0.weight"])
    assert not torch.equal(after["conv1.1.running_mean"], backbone["conv1.1.running_mean"])


@pytest.mark.parametrize("kind", ["arcface", "cosface"])
def test_margin_heads(kind):
    s, m = 16.0, 0.4
    model = create_model(Model(name=TINY, head=kind, margin_s=s, margin_m=m), 5)
    x, labels = images(6), torch.tensor([0, 1, 2, 3, 4, 0])
    target = F.one_hot(labels, 5).float()

    model.eval()
    feats = model.backbone(x)
    cos = F.normalize(feats, dim=1) @ F.normalize(model.head.weight, dim=1).T
    assert torch.allclose(model(x), s * cos, atol=1e-5) and torch.allclose(model(x, target), s * cos, atol=1e-5)

    head = model.head.train()
    plain, margin = head(feats), head(feats, target)
    assert torch.allclose(plain, s * cos, atol=1e-5)
    on, off = target.bool(), ~target.bool()
    assert (margin[on] < plain[on]).all() and torch.equal(margin[off], plain[off])
    c = cos[on]
    expected = torch.cos(torch.acos(c) + m) if kind == "arcface" else c - m
    assert torch.allclose(margin[on], s * expected, atol=1e-4)
    soft = head(feats, 0.5 * target)  # mixup: half the margin
    assert ((soft[on] < plain[on]) & (soft[on] > margin[on])).all()
    assert torch.equal(head(feats, labels), margin)  # class indices work too

    no_margin = create_model(Model(name=TINY, head=kind, margin_m=0.0, margin_s=s), 5).head
    no_margin.load_state_dict(head.state_dict())
    assert torch.allclose(no_margin.train()(feats, target), no_margin.eval()(feats))

    model.train()
    loss = F.cross_entropy(model(x, target), labels)
    loss.backward()
    assert torch.isfinite(loss) and model.head.weight.grad.abs().sum() > 0


def test_metrics():
    y = np.eye(3)[[0, 1, 2, 0]]
    assert score("accuracy", y, y * 0.8 + 0.05, "multiclass") == 1.0
    assert score("log_loss", y, np.full((4, 3), 1 / 3), "multiclass") == pytest.approx(np.log(3))
    yb = np.array([[0], [1], [1], [0]])
    assert score("roc_auc", yb, np.array([[.1], [.9], [.8], [.2]]), "binary") == 1.0
    assert np.isnan(score("roc_auc", np.ones((3, 1)), np.ones((3, 1)), "binary"))
    assert score("micro_f1", np.array([[1, 0], [1, 1]]), np.array([[.9, .1], [.8, .2]]), "multilabel") == pytest.approx(0.8)
    assert is_better("log_loss", 0.1, 0.2) and is_better("roc_auc", 0.9, 0.8) and is_better("accuracy", 0.1, None)
