import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from foldstack.config.training import LOSSES, Loss
from foldstack.errors import PipelineError
from foldstack.loss.factory import create_loss
from foldstack.loss.weighted import class_weights_from_targets

torch.manual_seed(0)
LOGITS = torch.randn(6, 4)
HARD = torch.eye(4)[[0, 1, 2, 3, 0, 1]]
MULTI_HOT = torch.tensor([[1., 0, 1, 0], [0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [1, 0, 0, 1]])
BIN = torch.tensor([[1.], [0], [1], [0], [0], [1]])


def close(a, b):
    return torch.allclose(a, b, atol=1e-6, rtol=1e-5)


def test_losses_accept_soft_targets_and_match_torch():
    ce = create_loss(Loss(), "multiclass")
    assert close(ce(LOGITS, HARD), F.cross_entropy(LOGITS, HARD.argmax(1)))
    bce = create_loss(Loss(), "multilabel")
    assert close(bce(LOGITS, MULTI_HOT), F.binary_cross_entropy_with_logits(LOGITS, MULTI_HOT))
    smooth = create_loss(Loss(label_smoothing=0.2), "binary")
    assert close(smooth(LOGITS[:, :1], BIN), F.binary_cross_entropy_with_logits(LOGITS[:, :1], BIN * 0.8 + 0.1))


def test_label_smoothing_matches_its_formula():
    eps, logp = 0.2, LOGITS.log_softmax(1)
    expected = ((1 - eps) * -(HARD * logp).sum(1) + eps * -logp.mean(1)).mean()
    for name in ("auto", "ce", "ohem", "soft_ce", "weighted_ce"):
        cfg = Loss(name=name, label_smoothing=eps, ohem_rate=1.0, class_weights=[1.0] * 4)
        assert close(create_loss(cfg, "multiclass")(LOGITS, HARD), expected), name


def test_focal_gamma_zero_is_ce_and_bce():
    cfg = Loss(name="focal", focal_gamma=0.0)
    assert close(create_loss(cfg, "multiclass")(LOGITS, HARD), F.cross_entropy(LOGITS, HARD))
    bce = F.binary_cross_entropy_with_logits
    assert close(create_loss(cfg, "multilabel")(LOGITS, MULTI_HOT), bce(LOGITS, MULTI_HOT))
    x = LOGITS[:, :1]
    assert close(create_loss(cfg, "binary")(x, BIN), F.binary_cross_entropy_with_logits(x, BIN))
    smoothed = Loss(name="focal", focal_gamma=0.0, label_smoothing=0.1)
    assert close(create_loss(smoothed, "multiclass")(LOGITS, HARD), F.cross_entropy(LOGITS, HARD, label_smoothing=0.1))


def test_focal_down_weights_easy_examples():
    focal = create_loss(Loss(name="focal", focal_gamma=2.0), "multiclass")
    easy, hard, t = torch.tensor([[4., 0, 0]]), torch.tensor([[0., 2, 0]]), torch.tensor([[1., 0, 0]])
    p_easy = easy.softmax(1)[0, 0]
    assert close(focal(easy, t), (1 - p_easy) ** 2 * F.cross_entropy(easy, t))
    ratio = lambda x: focal(x, t) / F.cross_entropy(x, t)  # noqa: E731
    assert ratio(easy) < 0.01 < 0.5 < ratio(hard) < 1
    sig = create_loss(Loss(name="focal", focal_gamma=2.0), "binary")
    bce = F.binary_cross_entropy_with_logits
    assert sig(torch.tensor([[4.]]), torch.ones(1, 1)) < 0.01 * bce(torch.tensor([[4.]]), torch.ones(1, 1))
    alpha = create_loss(Loss(name="focal", focal_gamma=0.0, focal_alpha=0.25), "binary")
    assert close(alpha(torch.zeros(2, 1), torch.tensor([[1.], [0.]])), torch.tensor(math.log(2) * (0.25 + 0.75) / 2))


def test_ohem_keeps_the_hardest_fraction():
    per_sample = -(HARD * LOGITS.log_softmax(1)).sum(1)
    full = create_loss(Loss(name="ohem", ohem_rate=1.0), "multiclass")
    assert close(full(LOGITS, HARD), F.cross_entropy(LOGITS, HARD))
    for rate in (0.5, 0.6):  # ceil(3.0) = 3, ceil(3.6) = 4 of 6
        k = math.ceil(rate * 6)
        expected = per_sample.sort(descending=True).values[:k].mean()
        got = create_loss(Loss(name="ohem", ohem_rate=rate), "multiclass")(LOGITS, HARD)
        assert close(got, expected) and got > F.cross_entropy(LOGITS, HARD)
    ml = create_loss(Loss(name="ohem", ohem_rate=0.5), "multilabel")(LOGITS, MULTI_HOT)
    per_row = F.binary_cross_entropy_with_logits(LOGITS, MULTI_HOT, reduction="none").mean(1)
    assert close(ml, per_row.topk(3).values.mean())


def test_auto_class_weights_are_inverse_frequencies():
    labels = np.array([0] * 6 + [1] * 3 + [2])
    y = np.eye(3, dtype=np.float32)[labels]
    w = class_weights_from_targets(y, "multiclass")
    assert np.allclose(w, [10 / (3 * 6), 10 / (3 * 3), 10 / (3 * 1)])
    assert np.allclose(w, compute_class_weight("balanced", classes=np.arange(3), y=labels))
    loss_fn = create_loss(Loss(name="weighted_ce"), "multiclass", train_targets=y)
    assert torch.allclose(loss_fn.weight, w)
    x, t = LOGITS[:4, :3], torch.eye(3)[[0, 1, 2, 2]]
    # probability targets: mean over samples of w_y * CE, not normalised by the sum of weights
    assert close(loss_fn(x, t), (w[t.argmax(1)] * F.cross_entropy(x, t.argmax(1), reduction="none")).mean())

    yb = np.array([[1.], [1.], [0.], [0.], [0.], [0.], [0.], [0.]])
    wb = create_loss(Loss(name="weighted_ce"), "binary", train_targets=yb)
    assert torch.allclose(wb.weight, torch.tensor([8 / (2 * 6), 8 / (2 * 2)]))
    xb = LOGITS[:, :1]
    per_elem = BIN * wb.weight[1] + (1 - BIN) * wb.weight[0]
    assert close(wb(xb, BIN), F.binary_cross_entropy_with_logits(xb, BIN, weight=per_elem))

    yml = MULTI_HOT.numpy()
    wml = create_loss(Loss(name="weighted_ce"), "multilabel", train_targets=yml)
    n_pos = yml.sum(0)
    assert np.allclose(wml.weight, (6 - n_pos) / n_pos)
    assert close(wml(LOGITS, MULTI_HOT), F.binary_cross_entropy_with_logits(LOGITS, MULTI_HOT, pos_weight=wml.weight))


def test_rsb_bce_threshold_binarises_mixed_targets():
    mixed = 0.7 * HARD + 0.3 * HARD.roll(1, 0)
    rsb = create_loss(Loss(name="bce", bce_target_threshold=0.2), "multiclass")
    assert close(rsb(LOGITS, mixed), F.binary_cross_entropy_with_logits(LOGITS, (mixed > 0).float()))
    plain = create_loss(Loss(name="bce"), "multiclass")
    assert close(plain(LOGITS, mixed), F.binary_cross_entropy_with_logits(LOGITS, mixed))
    assert not close(plain(LOGITS, mixed), rsb(LOGITS, mixed))


def test_soft_ce_on_one_hot_is_ce():
    soft_ce = create_loss(Loss(name="soft_ce"), "multiclass")
    assert close(soft_ce(LOGITS, HARD), F.cross_entropy(LOGITS, HARD.argmax(1)))


def test_lovasz_hinge():
    lovasz = create_loss(Loss(name="lovasz"), "binary")
    t = torch.tensor([[1.], [1.], [1.], [0.], [0.]])
    assert lovasz(torch.tensor([[1.], [3.], [2.], [-1.], [-5.]]), t) == 0
    # one false negative (idx 1) and one false positive (idx 3) at logit 0 -> hinge errors exactly 1, the rest 0:
    # loss = 1 - IoU = 1 - TP / (TP + FN + FP) = 1 - 2 / 4
    assert close(lovasz(torch.tensor([[2.], [0.], [3.], [0.], [-2.]]), t), torch.tensor(0.5))
    ml = create_loss(Loss(name="lovasz"), "multilabel")  # flattened over all labels: TP 2, FN 1, FP 2
    assert close(ml(torch.tensor([[2., 0.], [3., 0.], [0., -2.]]), torch.tensor([[1., 1.], [1., 0.], [0., 0.]])),
                 torch.tensor(1 - 2 / 5))


def test_errors_name_the_key():
    with pytest.raises(PipelineError, match=r"loss.name=lovasz needs a binary or multilabel task"):
        create_loss(Loss(name="lovasz"), "multiclass")
    with pytest.raises(PipelineError, match=r"loss.name=soft_ce needs a multiclass task"):
        create_loss(Loss(name="soft_ce"), "binary")
    with pytest.raises(PipelineError, match=r"loss.class_weights: expected 3 weights \(one per class\), got 2"):
        create_loss(Loss(name="weighted_ce", class_weights=[1.0, 2.0]), "multiclass", train_targets=np.eye(3))
    late = create_loss(Loss(name="weighted_ce", class_weights=[1.0, 2.0, 3.0]), "binary")  # no targets: checked on use
    with pytest.raises(PipelineError, match=r"class_weights: expected 2 weights \(\[negative, positive\]\), got 3"):
        late(LOGITS[:, :1], BIN)
    with pytest.raises(PipelineError, match=r"loss.class_weights: 'auto' needs the training targets"):
        create_loss(Loss(name="weighted_ce"), "multilabel")
    with pytest.raises(PipelineError, match=r"loss.class_weights: weights must be >= 0"):
        create_loss(Loss(name="weighted_ce", class_weights=[1.0, -1.0]), "binary")
    with pytest.raises(PipelineError, match=r"loss.focal_alpha: only for binary/multilabel"):
        create_loss(Loss(name="focal", focal_alpha=0.25), "multiclass")


REJECTED = {("soft_ce", "binary"), ("soft_ce", "multilabel"), ("lovasz", "multiclass")}  # see test_errors_name_the_key
REJECTED |= {(n, t) for n in ("mse", "huber") for t in ("binary", "multiclass", "multilabel")}  # test_regression.py


@pytest.mark.parametrize("name,task", [(n, t) for n in LOSSES for t in ("binary", "multiclass", "multilabel")
                                       if (n, t) not in REJECTED])
def test_every_loss_takes_soft_targets_and_gives_gradients(name, task):
    target = {"binary": BIN, "multiclass": HARD, "multilabel": MULTI_HOT}[task]
    mixed = 0.6 * target + 0.4 * target.flip(0)  # mixup-style rows
    logits = LOGITS[:, :target.shape[1]].clone().requires_grad_()
    cfg = Loss(name=name, label_smoothing=0.1, focal_alpha=None if task == "multiclass" else 0.25,
               bce_target_threshold=0.2)
    loss = create_loss(cfg, task, train_targets=target.numpy())(logits, mixed)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_ohem_over_focal_is_the_mean_of_the_hardest_focal_losses():
    from foldstack.loss.focal import SoftmaxFocalLoss

    torch.manual_seed(3)
    logits, target = torch.randn(10, 4), torch.eye(4)[torch.randint(0, 4, (10,))]
    per_sample = SoftmaxFocalLoss(2.0).per_sample(logits, target)
    expected = per_sample.sort(descending=True).values[:math.ceil(0.3 * 10)].mean()
    loss = create_loss(Loss(name="ohem", ohem_base="focal", ohem_rate=0.3, focal_gamma=2.0), "multiclass")
    assert torch.allclose(loss(logits, target), expected)
    assert torch.allclose(SoftmaxFocalLoss(2.0)(logits, target), per_sample.mean())


def test_distillation_loss_reduces_to_its_parts():
    from foldstack.loss.distill import DistillLoss, soften

    teacher = torch.softmax(torch.randn(6, 4), 1)
    base = create_loss(Loss(), "multiclass")
    target = torch.cat([HARD, teacher], 1)
    assert close(DistillLoss(base, 0.0, 3.0, "multiclass")(LOGITS, target), base(LOGITS, HARD))
    # alpha=1, T=1: plain soft-target CE on the teacher's probabilities
    soft_ce = -(teacher * LOGITS.log_softmax(1)).sum(1).mean()
    assert close(DistillLoss(base, 1.0, 1.0, "multiclass")(LOGITS, target), soft_ce)
    # the mix is linear in alpha; T softens both sides and rescales by T^2
    mixed = DistillLoss(base, 0.3, 2.0, "multiclass")(LOGITS, target)
    kd = -(soften(teacher, 2.0, "multiclass") * (LOGITS / 2).log_softmax(1)).sum(1).mean() * 4
    assert close(mixed, 0.7 * base(LOGITS, HARD) + 0.3 * kd)
    assert close(soften(teacher, 1.0, "multiclass"), teacher) and close(soften(teacher, 2.0, "multiclass").sum(1),
                                                                        torch.ones(6))
    # softening moves towards uniform (multiclass) / 0.5 (sigmoid outputs), keeping the order
    assert soften(teacher, 4.0, "multiclass").std(1).lt(teacher.std(1)).all()
    p = torch.tensor([[0.9], [0.2]])
    assert close(soften(p, 1.0, "binary"), p) and (soften(p, 3.0, "binary") - 0.5).abs().lt((p - 0.5).abs()).all()
    binary = DistillLoss(create_loss(Loss(), "binary"), 1.0, 1.0, "binary")
    assert close(binary(LOGITS[:, :1], torch.cat([BIN, p.repeat(3, 1)], 1)),
                 F.binary_cross_entropy_with_logits(LOGITS[:, :1], p.repeat(3, 1)))
