"""The StyleGAN2 loss and training phases against the paper's equations (tiny networks, CPU)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stylegan_ada import presets
from stylegan_ada.loss import StyleGAN2Loss
from stylegan_ada.training.options import TrainingOptions
from stylegan_ada.training.phases import adjusted_opt_kwargs, build_phases, ema_beta
from tests.support.threads import one_torch_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def _options(**kw) -> TrainingOptions:
    p = presets.resolve("tiny", 16, batch=4)
    base = dict(G_kwargs=p["G_kwargs"], D_kwargs=p["D_kwargs"], G_opt_kwargs=p["G_opt_kwargs"],
                D_opt_kwargs=p["D_opt_kwargs"], batch=4, batch_gpu=4, total_kimg=1.0, ema_kimg=2.5, ema_rampup=0.05)
    base.update(kw)
    return TrainingOptions(**base)


@pytest.fixture(scope="module")
def nets():
    from stylegan_ada.networks import Discriminator, Generator

    o = _options()
    torch.manual_seed(0)
    return Generator(**o.G_kwargs).train().requires_grad_(False), Discriminator(**o.D_kwargs).train().requires_grad_(False)


def test_phases_and_the_lazy_regularization_adjustment(nets):
    G, D = nets
    phases = build_phases(G, D, _options())
    assert [(p.name, p.interval) for p in phases] == [("Gmain", 1), ("Greg", 4), ("Dmain", 1), ("Dreg", 16)]
    g, d = phases[0].opt.param_groups[0], phases[2].opt.param_groups[0]
    assert phases[0].opt is phases[1].opt and phases[2].opt is phases[3].opt
    assert g["lr"] == pytest.approx(0.0025 * 4 / 5) and d["lr"] == pytest.approx(0.0025 * 16 / 17)
    assert g["betas"] == pytest.approx((0.0, 0.99 ** (4 / 5))) and d["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))
    assert g["eps"] == 1e-8
    both = build_phases(G, D, _options(G_reg_interval=None, D_reg_interval=None))
    assert [p.name for p in both] == ["Gboth", "Dboth"]
    assert adjusted_opt_kwargs({"lr": 0.002, "betas": [0, 0.99]}, None) == {"lr": 0.002, "betas": (0.0, 0.99),
                                                                            "eps": 1e-8}


def test_g_ema_half_life_and_ramp_up():
    o = _options(ema_kimg=10, ema_rampup=None, batch=16)
    assert ema_beta(o, 0) ** (10_000 / 16) == pytest.approx(0.5)  # half-life of ema_kimg
    o = _options(ema_kimg=10, ema_rampup=0.05, batch=16)
    assert ema_beta(o, 2000) == pytest.approx(0.5 ** (16 / 100))  # ramp-up: at most cur_nimg * 0.05
    assert ema_beta(o, 10 ** 9) == pytest.approx(0.5 ** (16 / 10_000))


def _grads(module):
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in module.parameters()]


def _manual_grads(module, loss):
    params = list(module.parameters())
    return [g if g is not None else torch.zeros_like(p)
            for p, g in zip(params, torch.autograd.grad(loss, params, allow_unused=True))]


def _run_phase(loss, module, phase, real, z, gain):
    module.requires_grad_(True)
    for p in module.parameters():
        p.grad = None
    torch.manual_seed(7)
    loss.accumulate_gradients(phase, real, torch.zeros([4, 0]), z, torch.zeros([4, 0]), gain=gain)
    module.requires_grad_(False)
    return _grads(module)


def _close(a, b):
    return all(torch.allclose(x, y, rtol=1e-5, atol=1e-7) for x, y in zip(a, b))


def test_each_phase_is_the_papers_loss(nets):
    G, D = nets
    gamma, c = 3.0, torch.zeros([4, 0])
    loss = StyleGAN2Loss(G, D, None, r1_gamma=gamma, style_mixing_prob=0, force_fp32=True)
    torch.manual_seed(1)
    real, z = torch.rand([4, 3, 16, 16]) * 2 - 1, torch.randn([4, G.z_dim])

    got = _run_phase(loss, G, "Gmain", real, z, gain=1)
    G.requires_grad_(True)
    torch.manual_seed(7)
    want = _manual_grads(G, F.softplus(-D(G.synthesis(G.mapping(z, c), force_fp32=True), c)).mean())
    G.requires_grad_(False)
    assert _close(got, want)

    got = _run_phase(loss, D, "Dmain", real, z, gain=1)
    D.requires_grad_(True)
    torch.manual_seed(7)
    with torch.no_grad():
        fake = G.synthesis(G.mapping(z, c), force_fp32=True)
    want = _manual_grads(D, F.softplus(D(fake, c)).mean() + F.softplus(-D(real, c)).mean())
    assert _close(got, want)
    D.requires_grad_(False)

    got = _run_phase(loss, D, "Dreg", real, z, gain=16)
    D.requires_grad_(True)
    x = real.detach().requires_grad_(True)
    (gx,) = torch.autograd.grad(D(x, c).sum(), [x], create_graph=True)
    want = _manual_grads(D, (gamma / 2 * gx.square().sum([1, 2, 3])).mean() * 16)
    D.requires_grad_(False)
    assert _close(got, want)


def test_path_length_penalty_and_its_running_mean(nets):
    G, D = nets
    reported = {}
    loss = StyleGAN2Loss(G, D, None, style_mixing_prob=0, force_fp32=True,
                         report=lambda name, v: reported.setdefault(name, []).append(v.detach()))
    torch.manual_seed(2)
    z, c = torch.randn([4, G.z_dim]), torch.zeros([2, 0])
    _run_phase(loss, G, "Greg", torch.zeros([4, 3, 16, 16]), z, gain=4)
    torch.manual_seed(7)  # same draws as the phase: G's noise inputs, then the projection noise
    ws = G.mapping(z[:2], c).requires_grad_(True)  # batch shrink 2
    img = G.synthesis(ws, force_fp32=True)
    noise = torch.randn_like(img) / 16  # sqrt(16 * 16 pixels)
    (grad,) = torch.autograd.grad((img * noise).sum(), [ws])
    lengths = grad.square().sum(2).mean(1).sqrt()
    assert loss.pl_mean.item() == 0  # folded in by end_phase, once per phase
    expected_mean = 0.01 * lengths.mean()  # lerp(0, mean, pl_decay)
    assert torch.allclose(reported["Loss/pl_penalty"][0], (lengths - expected_mean).square(), rtol=1e-4)
    loss.end_phase()
    assert loss.pl_mean.item() == pytest.approx(expected_mean.item(), rel=1e-5)


def test_style_mixing_switches_to_a_second_latent_after_a_random_layer(nets):
    G, D = nets
    loss = StyleGAN2Loss(G, D, None, style_mixing_prob=1.0, force_fp32=True)
    z, c = torch.randn([3, G.z_dim]), torch.zeros([3, 0])
    torch.manual_seed(5)
    with torch.no_grad():
        _, ws = loss.run_G(z, c)
    torch.manual_seed(5)
    cutoff = int(torch.empty([], dtype=torch.int64).random_(1, G.num_ws))
    torch.rand([])
    z2 = torch.randn_like(z)
    with torch.no_grad():
        w1, w2 = G.mapping(z, c, skip_w_avg_update=True), G.mapping(z2, c, skip_w_avg_update=True)
    assert 1 <= cutoff < G.num_ws
    assert torch.allclose(ws[:, :cutoff], w1[:, :cutoff]) and torch.allclose(ws[:, cutoff:], w2[:, cutoff:])


def test_ada_moves_p_every_four_minibatches_by_the_reference_step(tmp_path):
    """Signs reported by the loss reach the ADA controller; p moves by batch*interval/(ada_kimg*1000)."""
    from stylegan_ada.training.data import ImageSet
    from stylegan_ada.training.training_loop import RunInputs, Trainer, SINGLE

    o = _options(ada_target=0.6, ada_kimg=1.0, ada_interval=4)
    data = ImageSet(torch.zeros([2, 3, 16, 16], dtype=torch.uint8), torch.zeros([2, 0]))
    tr = Trainer(o, tmp_path, RunInputs(data, {}), torch.device("cpu"), SINGLE, log=lambda s: None)
    step = o.batch * o.ada_interval / (o.ada_kimg * 1000)
    assert math.isclose(step, 0.016)
    tr.augment_pipe.p.fill_(0.5)
    for signs, want in (([1.0, 1.0, 1.0, -1.0], 0.5 - step),  # r_t = 0.5 < 0.6: less augmentation
                        ([1.0] * 4, 0.5)):                    # r_t = 1 > 0.6: more
        for i in range(4):
            tr.loss.report("Loss/signs/real", torch.tensor(signs))
            tr.ada.end_minibatch(tr.augment_pipe)
            if i < 3:
                assert tr.augment_pipe.p.item() == pytest.approx(want + (step if want < 0.5 else -step))
        assert tr.augment_pipe.p.item() == pytest.approx(want)
    assert tr.ada.r_t == 1.0
