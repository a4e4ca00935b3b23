"""Optimizer groups, schedules, SWA, snapshots, early stopping, gradient accumulation and the LR range test:
each checked against its formula or definition."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import timm
import torch
from torch import nn

from foldstack.averaging import SWA, EarlyStopping, Snapshots
from foldstack.config.schema import Config
from foldstack.config.training import Train
from foldstack.engine.training import train_one_epoch
from foldstack.errors import PipelineError
from foldstack.optim.factory import create_optimizer, param_groups
from foldstack.optim.schedule import create_schedule
from foldstack.optim.lr_find import lr_at, range_test, suggest_lr

UPDATES = 10  # updates per epoch in the schedule tests


class TinyNet(nn.Module):
    """The shape of models.Net: a timm backbone without classifier, then a head."""

    def __init__(self):
        super().__init__()
        self.backbone = timm.create_model("test_resnet", num_classes=0)
        self.head = nn.Linear(self.backbone.num_features, 3)

    def forward(self, x, target=None):
        return self.head(self.backbone(x))


def lrs_over(tc: Train, epochs_metric=None):
    """[(update, lr of group 0)] after each update, the way the engine steps the schedule."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=tc.lr)
    opt.param_groups[0]["lr_scale"] = 1.0
    sched = create_schedule(opt, tc, UPDATES)
    out, step = {0: opt.param_groups[0]["lr"]}, 0
    for epoch in range(tc.epochs):
        for _ in range(UPDATES):
            opt.step()
            step += 1
            sched.step_update(step)
            out[step] = opt.param_groups[0]["lr"]
        if epochs_metric is not None:
            sched.step_epoch(epoch, epochs_metric[epoch])
            out[f"epoch{epoch}"] = opt.param_groups[0]["lr"]
    return out


def cosine(t, total, base, low):
    return low + 0.5 * (base - low) * (1 + math.cos(math.pi * t / total))


def test_warmup_then_cosine_matches_the_formula():
    tc = Train(epochs=5, lr=0.1, warmup_epochs=1, warmup_lr=0.001, min_lr=0.0, scheduler="cosine")
    lr = lrs_over(tc)
    assert lr[0] == pytest.approx(0.001)
    assert lr[5] == pytest.approx(0.001 + 5 * (0.1 - 0.001) / UPDATES)  # linear warmup over the first epoch
    for t in (10, 23, 37, 49):
        assert lr[t] == pytest.approx(cosine(t, 5 * UPDATES, 0.1, 0.0))


def test_step_multistep_exponential_and_constant():
    base = dict(epochs=6, lr=0.1, warmup_epochs=0)
    step = lrs_over(Train(**base, scheduler="step", decay_epochs=2, decay_rate=0.5))
    assert [step[t] for t in (0, 19, 20, 45)] == pytest.approx([0.1, 0.1, 0.05, 0.025])
    multi = lrs_over(Train(**base, scheduler="multistep", decay_milestones=[1, 4], decay_rate=0.1))
    # timm's multistep decays when update t + 1 reaches the milestone: around the epoch boundary, one update early
    assert [multi[t] for t in (8, 10, 38, 40)] == pytest.approx([0.1, 0.01, 0.01, 0.001])
    expo = lrs_over(Train(**base, scheduler="exponential", decay_rate=0.9))
    assert [expo[t] for t in (0, 10, 35, 59)] == pytest.approx([0.1, 0.09, 0.1 * 0.9 ** 3, 0.1 * 0.9 ** 5])
    const = lrs_over(Train(**base, scheduler="none", warmup_lr=1e-5))
    assert set(np.round(list(const.values()), 12)) == {0.1}


def test_cosine_with_restarts_restarts_each_cycle():
    tc = Train(epochs=4, lr=0.1, warmup_epochs=0, min_lr=0.0, cycles=2, scheduler="cosine")
    lr = lrs_over(tc)
    cycle = 2 * UPDATES
    for t in (5, 19, 20, 33):
        assert lr[t] == pytest.approx(cosine(t % cycle, cycle, 0.1, 0.0))
    assert lr[20] == pytest.approx(0.1)  # back to the peak at the start of cycle 2
    with pytest.raises(PipelineError, match="train.cycles=3 must divide train.epochs=4"):
        lrs_over(Train(epochs=4, cycles=3))


def test_onecycle_peaks_at_pct_start_and_ends_low():
    tc = Train(epochs=4, lr=0.1, scheduler="onecycle", onecycle_pct_start=0.25)
    lr = lrs_over(tc)
    assert lr[0] == pytest.approx(0.1 / 25)  # torch's OneCycleLR div_factor
    peak = max(range(1, 40), key=lambda t: lr[t])
    assert abs(peak - 0.25 * 40) <= 1 and lr[peak] == pytest.approx(0.1, rel=1e-2)
    assert lr[39] < 1e-4


def test_plateau_decays_after_patience_on_the_metric_and_resumes_its_counters():
    tc = Train(epochs=5, lr=0.1, warmup_epochs=1, warmup_lr=0.001, scheduler="plateau", patience_epochs=1,
               decay_rate=0.5)
    lr = lrs_over(tc, epochs_metric=[0.5, 0.6, 0.6, 0.6, 0.6])  # improves, then flat
    assert lr[0] == pytest.approx(0.001) and lr[5] == pytest.approx(0.001 + 5 * (0.1 - 0.001) / UPDATES)
    assert lr["epoch1"] == pytest.approx(0.1) and lr["epoch2"] == pytest.approx(0.1)
    assert lr["epoch3"] == pytest.approx(0.05) and lr[45] == pytest.approx(0.05)  # updates leave it alone
    # Its best metric and patience counter are checkpointed (timm's deprecated plateau wrapper loses them).
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    opt.param_groups[0]["lr_scale"] = 1.0
    sched = create_schedule(opt, Train(lr=0.1, warmup_epochs=0, scheduler="plateau", patience_epochs=2), UPDATES)
    for epoch, metric in enumerate([0.5, 0.7, 0.6, 0.6]):  # two epochs without improvement so far
        sched.step_epoch(epoch, metric)
    opt2 = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    opt2.param_groups[0]["lr_scale"] = 1.0
    resumed = create_schedule(opt2, Train(lr=0.1, warmup_epochs=0, scheduler="plateau", patience_epochs=2), UPDATES)
    resumed.load_state_dict(sched.state_dict())
    sched.step_epoch(4, 0.6)
    resumed.step_epoch(4, 0.6)  # the third: only a resumed counter knows it is past the patience
    assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"] == pytest.approx(0.01)


def test_param_groups_head_lr_no_wd_on_norms_and_layer_decay():
    model = TinyNet()
    groups = param_groups(model, Train(weight_decay=0.05, head_lr_mult=10))
    names = {id(p): n for n, p in model.named_parameters()}
    for g in groups:
        for p in g["params"]:
            assert (g["weight_decay"] == 0) == (p.ndim <= 1), names[id(p)]  # norms and biases: no decay
            assert g["lr_scale"] == (10 if names[id(p)].startswith("head.") else 1)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert all(g["weight_decay"] == 0.05 for g in param_groups(model, Train(weight_decay=0.05, no_wd_norm_bias=False)))

    layered = param_groups(model, Train(layer_decay=0.5))
    scale = {names[id(p)]: g["lr_scale"] for g in layered for p in g["params"]}
    assert scale["head.weight"] == 1.0 and scale["backbone.conv1.0.weight"] < scale["backbone.layer4.0.conv1.weight"] <= 1

    opt = create_optimizer(model, Train(optimizer="lookahead_adamw", lr=0.01, weight_decay=0.05, head_lr_mult=10))
    sched = create_schedule(opt, Train(optimizer="lookahead_adamw", lr=0.01, warmup_epochs=0), UPDATES)
    head_group = next(g for g in opt.param_groups if any(p is model.head.weight for p in g["params"]))
    assert head_group["lr"] == pytest.approx(0.1) and sched is not None  # lr_scale applied from the first update
    for name in ("sgd", "momentum", "adam", "radam", "lamb", "novograd"):
        assert isinstance(create_optimizer(model, Train(optimizer=name)), torch.optim.Optimizer)
    with pytest.raises(PipelineError, match="train.optimizer: unknown timm optimizer 'adamz'"):
        create_optimizer(model, Train(optimizer="adamz"))


def bn_model():
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))


def test_swa_weights_are_the_mean_and_bn_statistics_are_recomputed():
    torch.manual_seed(0)
    model = bn_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    swa = SWA(model, opt, Train(epochs=4, swa_start=0.5, swa_lr=0.05, swa_anneal_epochs=0))
    assert swa.start == 2 and not swa.active(1) and swa.active(2)
    snapshots = []
    for epoch in range(4):
        swa.begin_epoch(epoch)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        if swa.active(epoch):
            snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
            assert opt.param_groups[0]["lr"] == pytest.approx(0.05)  # SWALR holds the SWA LR
        swa.end_epoch(model, epoch)
    assert swa.n_averaged == 2
    x = torch.randn(64, 4) * 3 + 1
    averaged = swa.finalize([(x, torch.zeros(64))], torch.device("cpu"))
    state = averaged.state_dict()
    for name in ("0.weight", "0.bias", "2.weight"):
        assert torch.allclose(state[name], (snapshots[0][name] + snapshots[1][name]) / 2, atol=1e-6)
    with torch.no_grad():
        hidden = averaged[0](x)  # what the BN layer sees: its statistics must be these, not the models' mean
    assert torch.allclose(state["1.running_mean"], hidden.mean(0), atol=1e-5)
    assert torch.allclose(state["1.running_var"], hidden.var(0, unbiased=True), atol=1e-4)


def test_swa_state_round_trips_including_the_lr():
    model = bn_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tc = Train(epochs=6, swa_start=2, swa_lr=0.01, swa_anneal_epochs=3)
    swa = SWA(model, opt, tc)
    for epoch in range(4):
        swa.begin_epoch(epoch)
        swa.end_epoch(model, epoch)
    saved_lr, state, opt_state = opt.param_groups[0]["lr"], swa.state_dict(), opt.state_dict()
    model2 = bn_model()
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1)
    opt2.load_state_dict(opt_state)
    swa2 = SWA(model2, opt2, tc)
    swa2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == saved_lr and swa2.n_averaged == 2
    for epoch in (4, 5):
        for s in (swa, swa2):
            s.begin_epoch(epoch)
            s.end_epoch(model, epoch)
        assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"]


def test_snapshot_at_each_cycle_end(tmp_path):
    snaps = Snapshots(tmp_path, Train(epochs=6, cycles=3))
    written = [snaps.end_epoch(e) for e in range(6)]
    assert [p.name if p else None for p in written] == [None, "snapshot_1.pt", None, "snapshot_2.pt", None,
                                                       "snapshot_3.pt"]
    restored = Snapshots(tmp_path, Train(epochs=6, cycles=3))
    restored.load_state_dict(snaps.state_dict())
    assert restored.written == ["snapshot_1.pt", "snapshot_2.pt", "snapshot_3.pt"]


def test_early_stopping_counts_epochs_without_improvement():
    stop = EarlyStopping(2, lambda new, old: old is None or new > old)
    flags = [(stop.update(v), stop.stopped) for v in (0.5, 0.6, 0.6, 0.7, 0.65, 0.7)]
    assert flags == [(True, False), (True, False), (False, False), (True, False), (False, False), (False, True)]
    assert stop.best == 0.7
    never = EarlyStopping(None, lambda new, old: old is None or new > old)
    for _ in range(10):
        never.update(0.1)
    assert never.bad_epochs == 9 and not never.stopped  # no patience set: never stops


def test_gradient_accumulation_of_two_batches_equals_one_double_batch():
    """No BatchNorm: two half batches with accum_steps=2 give exactly the update of one full batch."""
    torch.manual_seed(0)
    x, y = torch.randn(16, 5), torch.eye(3)[torch.randint(0, 3, (16,))]

    def run(loader, accum):
        torch.manual_seed(1)
        model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
        fwd = model.forward
        model.forward = lambda inp, target=None: fwd(inp)
        opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        f = SimpleNamespace(model=model, net=model, channels_last=False, optimizer=opt, loss_fn=nn.CrossEntropyLoss(),
                            device=torch.device("cpu"),
                            scaler=torch.amp.GradScaler("cuda", enabled=False), mixup=None, swa=None, ema=None,
                            schedule=SimpleNamespace(step_update=lambda step, time_fraction: None), train_loader=loader,
                            n_outputs=3)
        cfg = Config(train=Train(accum_steps=accum, epochs=1), runtime=dict(progress=False))
        loss, steps = train_one_epoch(f, cfg, fold=0, epoch=0, step=0)
        return model.state_dict(), steps

    halves, steps_halves = run([(x[:8], y[:8]), (x[8:], y[8:])], accum=2)
    whole, steps_whole = run([(x, y)], accum=1)
    assert steps_halves == steps_whole == 1
    assert all(torch.allclose(halves[k], whole[k], atol=1e-6) for k in whole)
    separate, steps_separate = run([(x[:8], y[:8]), (x[8:], y[8:])], accum=1)
    assert steps_separate == 2 and not torch.allclose(separate["0.weight"], whole["0.weight"])


def test_lr_range_test_grows_exponentially_stops_on_divergence_and_suggests_the_steep_part():
    assert lr_at(0, 1e-6, 1.0, 7) == pytest.approx(1e-6) and lr_at(6, 1e-6, 1.0, 7) == pytest.approx(1.0)
    assert lr_at(3, 1e-6, 1.0, 7) == pytest.approx(1e-3)
    # Gradient descent on f(w) = w^2: converges for lr < 1, diverges beyond.
    w, current = [5.0], [0.0]

    def step():
        loss = w[0] ** 2
        w[0] -= current[0] * 2 * w[0]
        return loss

    lrs, losses = range_test(step, lambda lr: current.__setitem__(0, lr), 1e-4, 100.0, 100, smoothing=0.3)
    assert len(lrs) < 100 and lrs[-1] > 1.0  # stopped once the loss blew up past lr = 1
    suggested = suggest_lr(lrs, losses)
    assert 1e-2 < suggested < 1.0
    assert suggest_lr([1e-3, 1e-2], [1.0, 0.5]) is None
