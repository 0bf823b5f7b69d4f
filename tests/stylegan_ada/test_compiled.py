"""--compile on CPU: the main phases through torch.compile give the eager gradients; --cuda-graphs refused off CUDA.

Compiling with inductor costs minutes on this 2-core machine, so the tests trace with dynamo and run the captured
graphs with the ``aot_eager`` backend (AOTAutograd's forward and backward graphs, no code generation: the graph
capture inductor gets) or ``eager`` (dynamo's graph only). Measured: both give the eager gradients bit for bit;
inductor itself (fused kernels) after N training steps is in tools/bench_train.py --knobs and docs/benchmarks.md.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch

from tests.support.threads import one_torch_thread

RES = 8  # the smallest tiny network (4 and 8 px blocks): tracing time grows with the number of layers


def _nets():
    from stylegan_ada import presets
    from stylegan_ada.networks import Discriminator, Generator

    opts = presets.training_options("tiny", RES, batch=4, total_kimg=1.0)
    torch.manual_seed(0)
    G = Generator(**opts.G_kwargs).train().requires_grad_(False)
    D = Discriminator(**opts.D_kwargs).train().requires_grad_(False)
    return G, D


def _phase_grads(loss, phase, module, inputs):
    module.requires_grad_(True)
    for p in module.parameters():
        p.grad = None
    torch.manual_seed(5)  # the loop seeds every round: noise inputs and style mixing draw the same numbers
    loss.accumulate_gradients(phase, *inputs, gain=1.0)
    module.requires_grad_(False)
    return [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("phase, backend, style_mixing", [("Dmain", "aot_eager", 0.0), ("Gmain", "eager", 0.9)])
def test_compiled_main_phase_gives_the_eager_gradients_without_graph_breaks(phase, backend, style_mixing):
    from torch._dynamo.utils import counters

    from stylegan_ada.loss import StyleGAN2Loss
    from stylegan_ada.training.compiled import compiled_phases

    with one_torch_thread():
        G, D = _nets()
        loss = StyleGAN2Loss(G, D, None, style_mixing_prob=style_mixing, force_fp32=True)
        compiled = compiled_phases(loss, True, False, torch.device("cpu"), backend=backend)
        g = torch.Generator().manual_seed(1)
        inputs = (torch.randn([4, 3, RES, RES], generator=g), torch.zeros([4, 0]),
                  torch.randn([4, G.z_dim], generator=g), torch.zeros([4, 0]))
        module = G if phase == "Gmain" else D
        eager = _phase_grads(loss, phase, module, inputs)
        counters.clear()
        fast = _phase_grads(compiled.loss_for(phase), phase, module, inputs)
    assert compiled.loss_for(phase) is not loss and compiled.loss_for(phase[0] + "reg") is loss
    assert counters["stats"]["unique_graphs"] >= 2  # it did compile (G and D)
    assert not counters["graph_break"]  # our ops take their reference path under compile: one graph per call
    for a, b in zip(eager, fast):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)  # measured: equal bit for bit


def test_trainer_builds_the_compiled_path_only_when_asked():
    from stylegan_ada import presets
    from stylegan_ada.training.compiled import CompileError
    from stylegan_ada.training.data import ImageSet
    from stylegan_ada.training.launch import known_errors
    from stylegan_ada.training.training_loop import SINGLE, RunInputs, Trainer

    images = torch.zeros([4, 3, RES, RES], dtype=torch.uint8)
    data = ImageSet(images, torch.zeros([4, 0]), mirror=False)
    with tempfile.TemporaryDirectory() as tmp, one_torch_thread():
        def trainer(**knobs):
            opts = presets.training_options("tiny", RES, batch=4, total_kimg=1.0, **knobs)
            return Trainer(opts, Path(tmp), RunInputs(data, {}), torch.device("cpu"), SINGLE, log=lambda line: None)

        plain = trainer().compiled
        assert plain.fast is None and plain.loss_for("Gmain") is plain.eager
        fast = trainer(compile=True).compiled  # compiles lazily, at the first step
        assert fast.loss_for("Gmain") is fast.fast and fast.loss_for("Dreg") is fast.eager
        with pytest.raises(CompileError, match="--cuda-graphs needs a CUDA device") as err:
            trainer(cuda_graphs=True)
    assert isinstance(err.value, known_errors())  # the CLI says it in one line


def test_cuda_graphs_refused_on_cpu_with_one_line():
    from augment.errors import UserError
    from augment.train_config import TrainArgs, check_device_args

    check_device_args(TrainArgs(compile=True), "cpu")  # compile runs on CPU
    with pytest.raises(UserError) as err:
        check_device_args(TrainArgs(cuda_graphs=True), "cpu")
    assert "--cuda-graphs needs a CUDA device" in str(err.value) and "\n" not in str(err.value)
