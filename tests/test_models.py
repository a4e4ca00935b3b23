import numpy as np
import pytest
import timm
import torch

from foldstack.config import Loss, Model
from foldstack.errors import PipelineError
from foldstack.loss import create_loss
from foldstack.metrics import is_better, score
from foldstack.models import create_model


def test_pretrained_weights_from_a_local_file_with_another_head(tmp_path):
    source = timm.create_model("test_resnet", num_classes=7)
    torch.save(source.state_dict(), tmp_path / "weights.pth")
    model = create_model(Model(name="test_resnet", pretrained_path=str(tmp_path / "weights.pth")), num_classes=3)
    target = model.state_dict()
    backbone = [k for k in target if not k.startswith(model.default_cfg["classifier"])]
    assert backbone and all(torch.equal(target[k], source.state_dict()[k]) for k in backbone)
    assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_model_errors_are_named(tmp_path):
    with pytest.raises(PipelineError, match="unknown timm model 'resnet_nope'"):
        create_model(Model(name="resnet_nope"), 2)
    with pytest.raises(PipelineError, match="pretrained_path: file not found"):
        create_model(Model(name="test_resnet", pretrained_path=str(tmp_path / "none.pth")), 2)


def test_losses_accept_soft_targets_and_match_torch():
    logits, target = torch.randn(6, 4), torch.eye(4)[[0, 1, 2, 3, 0, 1]]
    ce = create_loss(Loss(), "multiclass")
    assert torch.allclose(ce(logits, target), torch.nn.functional.cross_entropy(logits, target.argmax(1)))
    bce = create_loss(Loss(), "multilabel")
    assert torch.allclose(bce(logits, target), torch.nn.functional.binary_cross_entropy_with_logits(logits, target))
    smooth = create_loss(Loss(label_smoothing=0.2), "binary")
    assert smooth(logits, target) > 0


def test_metrics():
    y = np.eye(3)[[0, 1, 2, 0]]
    assert score("accuracy", y, y * 0.8 + 0.05, "multiclass") == 1.0
    assert score("log_loss", y, np.full((4, 3), 1 / 3), "multiclass") == pytest.approx(np.log(3))
    yb = np.array([[0], [1], [1], [0]])
    assert score("roc_auc", yb, np.array([[.1], [.9], [.8], [.2]]), "binary") == 1.0
    assert np.isnan(score("roc_auc", np.ones((3, 1)), np.ones((3, 1)), "binary"))
    assert score("micro_f1", np.array([[1, 0], [1, 1]]), np.array([[.9, .1], [.8, .2]]), "multilabel") == pytest.approx(0.8)
    assert is_better("log_loss", 0.1, 0.2) and is_better("roc_auc", 0.9, 0.8) and is_better("accuracy", 0.1, None)
