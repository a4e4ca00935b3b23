"""Test-time augmentation views, their batched forward pass and the merging of their probabilities."""
import pytest
import timm
import torch
import torchvision.transforms.v2.functional as TF

from foldstack.loss.factory import logits_to_probs
from foldstack.tta import build_views, forward_views, merge_views

S = 16


@pytest.fixture
def x():
    return torch.randn(2, 3, S, S, generator=torch.Generator().manual_seed(0))  # no symmetry of the square


@pytest.fixture(scope="module")
def predict():
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", num_classes=3).eval()  # BatchNorm in eval mode: rows independent

    @torch.no_grad()
    def run(batch):
        return logits_to_probs(model(batch), "multiclass")
    return run


def views(tta, scales=(), fraction=0.875):
    return build_views(list(tta), list(scales), fraction, S)


def test_dihedral_views_are_exactly_invertible_and_distinct(x):
    d4 = views(["d4"])
    assert [v.name for v in d4] == ["identity", "rot90", "rot180", "rot270", "hflip", "vflip", "transpose",
                                    "antitranspose"]
    outs = [v.apply(x) for v in d4]
    for v, out in zip(d4, outs):
        assert v.size is None and out.shape == x.shape
        assert torch.equal(v.undo(out), x), v.name
    assert all(not torch.equal(a, b) for i, a in enumerate(outs) for b in outs[i + 1:])
    by_name = {v.name: v for v in d4}
    assert torch.equal(by_name["identity"].apply(x), x)
    assert torch.equal(by_name["hflip"].apply(x), x.flip(3))
    assert torch.equal(by_name["vflip"].apply(x), x.flip(2))


@pytest.mark.parametrize("tta,n", [([], 1), (["hflip"], 2), (["hflip", "vflip"], 3), (["hflip", "d4"], 8),
                                   (["d4", "hflip", "vflip"], 8), (["hflip", "hflip"], 2)])
def test_build_views_deduplicates_identity_first(x, tta, n):
    vs = views(tta)
    assert len(vs) == n and len({v.name for v in vs}) == n
    assert vs[0].name == "identity" and torch.equal(vs[0].apply(x), x)


@pytest.mark.parametrize("tta,n", [(["five_crop"], 6), (["ten_crop"], 11), (["five_crop", "ten_crop"], 11)])
def test_crop_views(x, tta, n):
    vs = views(tta)
    assert len(vs) == n
    assert all(v.apply(x).shape == x.shape and v.size is None for v in vs)
    assert all(v.name.startswith("crop_") and v.undo is None for v in vs[1:])  # crops are not invertible
    const = torch.full((2, 3, S, S), 0.7)
    assert torch.allclose({v.name: v for v in vs}["crop_c"].apply(const), const)


def test_crops_cut_the_upscaled_batch(x):
    vs = {v.name: v for v in views(["ten_crop"], fraction=0.5)}
    big = TF.resize(x, [2 * S, 2 * S], antialias=True)
    assert torch.equal(vs["crop_tl"].apply(x), big[..., :S, :S])
    assert torch.equal(vs["crop_br"].apply(x), big[..., S:, S:])
    assert torch.equal(vs["crop_c"].apply(x), big[..., S // 2:S // 2 + S, S // 2:S // 2 + S])
    assert torch.equal(vs["crop_tl_hflip"].apply(x), big[..., :S, :S].flip(3))


def test_crop_fraction_one_is_rejected():
    with pytest.raises(ValueError, match="crop_fraction"):
        views(["five_crop"], fraction=1.0)


def test_scale_views(x):
    vs = views([], scales=[12, S, 24])
    assert [v.name for v in vs] == ["identity", "scale12", "scale24"]
    assert [v.size for v in vs] == [None, 12, 24]
    assert [v.apply(x).shape[-2:] for v in vs[1:]] == [(12, 12), (24, 24)]


def test_unknown_view_is_rejected():
    with pytest.raises(ValueError, match="unknown view 'rot45'"):
        views(["hflip", "rot45"])


def test_identity_only_tta_equals_no_tta(x, predict):
    out = forward_views(predict, x, views([]), max_batch=64)
    assert out.shape == (1, 2, 3)
    assert torch.allclose(out[0], predict(x), atol=1e-6)


@pytest.mark.parametrize("max_batch", [64, 3, 1])  # one call per size group; chunks splitting views; per image
def test_batched_views_equal_separate_passes(x, predict, max_batch):
    vs = views(["hflip", "vflip"], scales=[24])  # 3 views of side 16 in one batch, 1 of side 24 in another
    vs = [vs[0], vs[3], vs[1], vs[2]]  # the results come back in this order, not in the order of the groups
    calls = []
    out = forward_views(lambda b: calls.append(len(b)) or predict(b), x, vs, max_batch)
    assert max(calls) <= max_batch and sum(calls) == 4 * len(x)
    separate = torch.stack([predict(v.apply(x)) for v in vs])
    assert torch.allclose(out, separate, atol=1e-5)
    assert torch.allclose(merge_views(out, "mean", "multiclass"), separate.mean(0), atol=1e-5)


def test_merge_views():
    p = torch.rand(4, 5, 3, generator=torch.Generator().manual_seed(1))
    same = p[:1].expand(3, -1, -1)
    assert torch.allclose(merge_views(same, "geometric", "multilabel"), p[0], atol=1e-6)
    assert (merge_views(p, "max", "multilabel") >= merge_views(p, "mean", "multilabel")).all()
    assert merge_views(p.half(), "geometric", "multilabel").dtype == torch.float32
    soft = p.softmax(-1)
    for how in ("mean", "geometric", "max"):
        merged = merge_views(soft, how, "multiclass")
        assert merged.shape == (5, 3)
        assert torch.allclose(merged.sum(1), torch.ones(5), atol=1e-5)
    with pytest.raises(ValueError, match="unknown merge"):
        merge_views(p, "median", "multiclass")
