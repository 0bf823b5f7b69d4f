"""``augment train``: train (or continue) the StyleGAN2-ADA model of one class, or of several (``--classes``)."""
from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from augment.cli_common import workspace_option

# click parameter name -> TrainArgs field
_FIELDS = {"class_": "cls", "from_": "from_"}
_NOT_ARGS = ("workspace", "resume", "force", "dry_run", "quiet", "classes", "concurrent", "ddp")


def _args_from_click(ctx: click.Context, values: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(TrainArgs with the given values, {field: value} of the options given on the command line)."""
    from click.core import ParameterSource

    from augment.train_config import TrainArgs

    given: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    for name, value in values.items():
        if name in _NOT_ARGS:
            continue
        key = _FIELDS.get(name, name)
        source = ctx.get_parameter_source(name)
        if source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            given[key] = value
        if value is not None:
            raw[key] = value
    return TrainArgs.from_dict(raw), given


@click.command()
@workspace_option
@click.option("--class", "class_", default=None, help="Class to train one model for (train+val images of the class)")
@click.option("--classes", default=None, help="Train every listed class (all, or a,b,c), each in its own run, "
                                               "as one job (see --gpus, --concurrent)")
@click.option("--cond", is_flag=True, default=None, help="One class-conditional model for all classes instead")
@click.option("--extra-images", type=click.Path(), default=None,
              help="Folder of extra unlabeled images to train on as well (or alone, e.g. a pretraining pool)")
@click.option("--resume", is_flag=True, help="Continue the newest run of this class from its newest good snapshot")
@click.option("--force", is_flag=True, help="With --resume: accept settings that differ from the run's")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and exit")
@click.option("--defaults", type=click.Choice(["thesis", "reference"]), default=None,
              help="Default set: thesis (target 0.7, gamma 10, 1000 kimg, mirror, from ffhq256, snap 2) or "
                   "reference (target 0.6, preset gamma/kimg, no mirror, from scratch, snap 50)  [default: thesis]")
@click.option("--cfg", type=click.Choice(["auto", "paper256", "tiny", "small", "stylegan2", "paper512", "paper1024", "cifar"]),
              default=None, help="Network/hyper-parameter preset  [default: auto]")
@click.option("--resolution", type=int, default=None,
              help="Training resolution (power of two <= the workspace's)  [default: workspace; tiny: <= 64]")
@click.option("--kimg", type=float, default=None, help="Total length in thousands of real images shown (also the "
                                                       "total target when resuming)  [default: 1000 (thesis)]")
@click.option("--batch", type=int, default=None, help="Total minibatch  [default: from --cfg; auto at 256 px: 16]")
@click.option("--batch-gpu", type=int, default=None, help="Images per GPU per round (less memory)  [default: all]")
@click.option("--gamma", type=float, default=None, help="R1 weight  [default: 10 (thesis)]")
@click.option("--mirror/--no-mirror", default=None, help="Add x-flipped copies of the images  [default: on (thesis)]")
@click.option("--aug", type=click.Choice(["ada", "fixed", "noaug"]), default=None, help="Augmentation  [default: ada]")
@click.option("--augpipe", type=click.Choice(["blit", "geom", "color", "bg", "bgc", "bgcf", "bgcfn", "bgcfnc"]),
              default=None, help="Augmentations used  [default: bgc]")
@click.option("--target", type=float, default=None, help="ADA target for r_t  [default: 0.7 thesis, 0.6 reference]")
@click.option("--p", type=float, default=None, help="Augmentation probability: constant (--aug fixed) or initial (ada)")
@click.option("--snap", type=int, default=None,
              help="Snapshot every SNAP ticks of --tick-kimg kimg  [default: 2 = every 8 kimg (thesis)]")
@click.option("--tick-kimg", type=float, default=None, help="Kimg per tick (status line)  [default: 4]")
@click.option("--metrics", type=click.Choice(["fid", "kid", "none"]), default=None,
              help="Metric at every snapshot  [default: fid on GPU, none on CPU]")
@click.option("--features", default=None,
              help="Feature extractor of --metrics: auto, inception, inception-fid, inception-torchvision, "
                   "efficientnet-lite0 or musicnn (for --preset musicnn workspaces)  [default: auto]")
@click.option("--seed", type=int, default=None, help="Random seed  [default: 0]")
@click.option("--freezed", type=int, default=None, help="Freeze the first N layers of D (Freeze-D)  [default: 0]")
@click.option("--from", "from_", default=None,
              help="Start from a trained network: ffhq256, a .pkl/.safetensors path, or scratch  [default: ffhq256]")
@click.option("--gpus", type=int, default=None, help="GPUs (processes): one run split over them (spawned; or launch with "
                                                    "torchrun); with --classes a queue, one class per GPU  [default: 1]")
@click.option("--ddp", is_flag=True, help="With --classes --gpus N: train the classes one after another, each split "
                                          "over the N GPUs, instead of one class per GPU")
@click.option("--concurrent", type=int, default=None,
              help="With --classes: classes trained at once per device (processes sharing it)  [default: 1]")
@click.option("--workers", type=int, default=None, help="Threads decoding images  [default: 4]")
@click.option("--device", default=None, help="auto, cpu, cuda or cuda:N  [default: auto]")
@click.option("--keep", type=int, default=None, help="Snapshot pairs kept (0 = all; the best-FID network is always "
                                                     "kept)  [default: 3]")
@click.option("--precision", type=click.Choice(["fp32", "tf32", "fp16-top", "bf16"]), default=None,
              help="Arithmetic on GPU (CPU: fp32, or bf16 autocast)  [default: fp16-top, the reference's]")
@click.option("--channels-last/--no-channels-last", default=None,
              help="Channels-last activations in the fp16 blocks (GPU)  [default: off]")
@click.option("--compile/--no-compile", default=None,
              help="torch.compile the G and D passes of the main phases (CPU and GPU; the first minibatches "
                   "compile for minutes)  [default: off]")
@click.option("--cuda-graphs/--no-cuda-graphs", default=None,
              help="Capture the compiled passes as CUDA graphs (GPU only; implies --compile)  [default: off]")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars")
def train(**values: Any) -> None:
    """Train the GAN of one class (StyleGAN2-ADA) on its train+val images; safe to kill and --resume.

    \b
    Writes WORKSPACE/runs/<class>/<NNNNN>-<desc>/: config.json, log.txt, stats.jsonl, reals.png,
    fakes<kimg>.png, network-snapshot-<kimg>.safetensors + training-state-<kimg>.pt.
    SIGTERM/SIGINT write a final snapshot before exiting; `--resume` continues exactly.
    `--classes all` trains every class the same way, plus WORKSPACE/runs/_jobs/<NNNNN>-<desc>/job.json.
    """
    from augment.errors import Interrupted, UserError
    from augment.workspace import Workspace
    from stylegan_ada.training import launch

    ctx = click.get_current_context()
    args, given = _args_from_click(ctx, values)
    try:
        ws = Workspace.load(values["workspace"])
        ws.require_classes("augment train")
        if values["classes"] is not None:
            from augment.train_job import train_classes

            result = train_classes(ws, args, given, values, log=lambda line: click.echo(line, err=True),
                                   out=click.echo)
        else:
            _single_only(values)
            result = _train(ws, args, given, values)
    except UserError:
        raise
    except launch.known_errors() as exc:
        raise UserError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    if result is None:
        return
    status, message = result
    if status == "stopped":
        raise Interrupted(message)
    click.echo(message)


def _single_only(values: dict[str, Any]) -> None:
    from augment.errors import UserError

    for name in ("concurrent", "ddp"):
        if values[name] not in (None, False):
            raise UserError(f"--{name} only applies to --classes")


def _plan(ws: Any, args: Any, given: dict[str, Any], values: dict[str, Any]) -> Any:
    from augment.train_plan import plan_new, plan_resume

    if values["resume"]:
        return plan_resume(ws, args, given, force=values["force"])
    if values["force"]:
        click.echo("note: --force only matters with --resume", err=True)
    return plan_new(ws, args)


def _train(ws: Any, args: Any, given: dict[str, Any], values: dict[str, Any]) -> tuple[str, str] | None:
    from augment.errors import UserError
    from augment.train_plan import make_job, write_config
    from stylegan_ada.training import launch
    from stylegan_ada.training.run_lock import RunLock
    from stylegan_ada.training.distributed import launched_by_torchrun
    from stylegan_ada.training.run_dir import create_run_dir

    show = not values["quiet"]
    if launched_by_torchrun():
        return _train_torchrun(ws, args, given, values)
    plan = _plan(ws, args, given, values)
    for note in plan.notes:
        click.echo(note, err=True)
    if values["dry_run"]:
        click.echo(json.dumps(plan.summary(), indent=2))
        return None
    if plan.run_dir is None:
        plan.run_dir = create_run_dir(plan.runs_root, plan.desc)
    with RunLock(plan.run_dir):  # one trainer per run; taken before config.json records this session
        write_config(plan, list(sys.argv))
        click.echo(f"{'Resuming' if plan.resume else 'Starting'} run {plan.run_dir}", err=True)
        job = make_job(plan, show)
        if plan.args.gpus > 1:
            out = launch.spawn(job, plan.args.gpus)
            if out["status"] == "error":
                raise UserError(out["message"])
            return _summary(plan, out["status"], out["cur_nimg"], out.get("network_snapshot") or None)
        result = launch.run_job(job, source=plan.transfer_source)
    return _summary(plan, result.status, result.cur_nimg, result.network_snapshot)


def _train_torchrun(ws: Any, args: Any, given: dict[str, Any], values: dict[str, Any]) -> tuple[str, str] | None:
    """Under torchrun every rank runs this; rank 0 plans and creates the run, the others receive the job."""
    from augment.train_plan import make_job, write_config
    from stylegan_ada.training import launch
    from stylegan_ada.training.run_lock import RunLock
    from stylegan_ada.training.run_dir import create_run_dir

    import torch

    device = (values.get("device") or "auto").lower()
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    plans: list[Any] = []

    def prepare(ctx: Any, stack: Any) -> Any:
        args.gpus = ctx.world_size
        plan = _plan(ws, args, dict(given, gpus=ctx.world_size), values)
        plans.append(plan)
        if values["dry_run"]:
            click.echo(json.dumps(plan.summary(), indent=2))
            return None
        if plan.run_dir is None:
            plan.run_dir = create_run_dir(plan.runs_root, plan.desc)
        stack.enter_context(RunLock(plan.run_dir))
        write_config(plan, list(sys.argv))
        return make_job(plan, not values["quiet"])

    ctx, result = launch.torchrun(prepare, "nccl" if use_cuda else "gloo")
    if result is None or not ctx.is_main:
        return None
    return _summary(plans[0], result.status, result.cur_nimg, result.network_snapshot)


def _summary(plan: Any, status: str, cur_nimg: int, snapshot: Any) -> tuple[str, str]:
    target = f"--class {plan.args.cls}" if plan.args.cls else ("--cond" if plan.args.cond else
                                                               f"--extra-images {plan.args.extra_images}")
    snap = os.path.basename(str(snapshot)) if snapshot else "none"
    kimg = cur_nimg / 1000
    if status == "stopped":
        return status, (f"stopped at {kimg:.3f} kimg after writing snapshot {snap} in {plan.run_dir}; continue with "
                        f"`augment train --workspace {plan.ws.root} {target} --resume`")
    verb = "already at" if status == "already_done" else "trained to"
    return status, f"{plan.run_dir.name}: {verb} {kimg:.3f} kimg; newest snapshot {snap} ({plan.run_dir})"
