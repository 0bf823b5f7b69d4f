"""The StyleGAN2-ADA training loop, built to be killed at any moment and resumed exactly.

Structure as in the reference: per minibatch the phases Gmain, Greg (every 4), Dmain, Dreg (every 16), each
accumulating gradients over rounds of ``batch_gpu`` images, then the G_ema update and (every 4 minibatches) the
ADA adjustment of p. A tick (``kimg_per_tick``) ends with a status line and a stats.jsonl record; every ``snap``
ticks a snapshot pair is written (network, then training state).

Exactness: before each round the global torch generator is seeded from (seed, step, phase, round) and the data order
is a function of (seed, position), so the numbers drawn in a step do not depend on anything but the step. Restoring
weights, optimizer states and counters from a snapshot therefore continues the very same trajectory; and splitting
the batch over processes draws the same numbers as one process doing several rounds.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from stylegan_ada.loss import StyleGAN2Loss
from stylegan_ada.training import precision, reporting
from stylegan_ada.training.compiled import compiled_phases
from stylegan_ada.training import run_dir as rd
from stylegan_ada.training.faults import FaultPlan
from stylegan_ada.training.stop import StopRequest
from stylegan_ada.training.data import ImageSet, SampleOrder
from stylegan_ada.training.distributed import SINGLE, DistContext, all_reduce_sum, any_rank, average_gradients, barrier
from stylegan_ada.training.options import TrainingOptions
from stylegan_ada.training.phases import EmaUpdater, apply_opt_kwargs, build_phases, ema_beta
from stylegan_ada.training.seeding import derive_seed, seed_round
from stylegan_ada.training.snapshots import (Progress, continue_from_network, discard_network, load_networks_into,
                                            restore_rng_from, save_network, save_state, write_failure_message)
from stylegan_ada.training.state import TrainingStateError
from stylegan_ada.training.stats import StatCollector
from stylegan_ada.training.tensorboard import TickWriter


class TrainingError(RuntimeError):
    """A run cannot go on (disk full, unusable resume point); the message is one line saying what to do."""


@dataclass
class RunInputs:
    data: ImageSet                         # on the CPU; moved to the training device by the loop
    training_set_kwargs: dict[str, Any]    # recorded in every network snapshot
    init_from: str | None = None           # transfer source for a fresh start (ignored when resuming)
    init_source: dict[str, Any] | None = None  # the networks of init_from, when the caller loaded them already


@dataclass
class RunResult:
    status: str                            # done | stopped | already_done
    cur_nimg: int
    network_snapshot: Path | None
    resumed_from: str | None


def run(options: TrainingOptions, run_dir: str | Path, inputs: RunInputs, *, device: str | torch.device = "cpu",
        ctx: DistContext = SINGLE, log: Callable[[str], None] = print, show_progress: bool = True,
        stop: StopRequest | None = None) -> RunResult:
    """Train in ``run_dir`` until ``options.total_kimg``, resuming from its newest good snapshot if it has one."""
    trainer = Trainer(options, Path(run_dir), inputs, torch.device(device), ctx, log)
    return trainer.train(stop or StopRequest(), show_progress)


class Trainer:
    def __init__(self, options: TrainingOptions, run_dir: Path, inputs: RunInputs, device: torch.device,
                 ctx: DistContext, log: Callable[[str], None]):
        if device.type == "cuda" and device.index is None:  # torch.cuda.set_device needs an index
            device = torch.device("cuda", torch.cuda.current_device())
        self.opts, self.run_dir, self.inputs, self.device, self.ctx = options, run_dir, inputs, device, ctx
        self.log = log if ctx.is_main else (lambda line: None)
        per_process = options.batch // ctx.world_size
        if options.batch % ctx.world_size or per_process % options.batch_gpu:
            raise TrainingError(f"batch {options.batch} must split into {ctx.world_size} process(es) x rounds of "
                                f"batch_gpu {options.batch_gpu}")
        self.rounds = per_process // options.batch_gpu
        self._setup_backends()
        self.data = inputs.data.to(device)
        self.order = SampleOrder(len(self.data), options.seed, device)
        self._build_networks()
        self.stats = StatCollector(device)
        self.ada = None
        if self.augment_pipe is not None and options.aug == "ada":
            from stylegan_ada.ada.controller import AdaController

            self.ada = AdaController(target=options.ada_target, ada_kimg=options.ada_kimg,
                                     interval=options.ada_interval, batch=options.batch)
        self.loss = StyleGAN2Loss(self.G, self.D, self.augment_pipe, r1_gamma=options.gamma,
                                  style_mixing_prob=options.style_mixing_prob, pl_weight=options.pl_weight,
                                  pl_batch_shrink=options.pl_batch_shrink, pl_decay=options.pl_decay,
                                  force_fp32=precision.force_fp32(options.precision, device), report=self._report)
        self.compiled = compiled_phases(self.loss, options.compile, options.cuda_graphs, device)  # eager when off
        self.phases = build_phases(self.G, self.D, options)
        self.ema = EmaUpdater(self.G, self.G_ema)
        self.progress = Progress()
        self.faults = FaultPlan.from_env()  # None unless a test armed one: read once, not per step
        self.resumed_from: str | None = None
        self.keep_tags: list[str] = []

    # ------------------------------------------------------------------------------------------------------ setup
    def _setup_backends(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = self.opts.cudnn_benchmark
            tf32 = precision.allow_tf32(self.opts.precision, self.opts.allow_tf32)
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32

    def _build_networks(self) -> None:
        from stylegan_ada.networks import Discriminator, Generator

        o = self.opts
        torch.manual_seed(derive_seed(o.seed, 0))  # same initial weights on every rank
        self.G = Generator(**o.G_kwargs).train().requires_grad_(False).to(self.device)
        self.D = Discriminator(**o.D_kwargs).train().requires_grad_(False).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.nets = {"G": self.G, "D": self.D, "G_ema": self.G_ema}
        precision.use_channels_last(self.nets.values(), o.channels_last)
        if self.G.c_dim != self.data.c_dim:
            raise TrainingError(f"the generator has c_dim {self.G.c_dim} but the data has {self.data.c_dim} labels")
        self.augment_pipe = None
        if o.aug == "ada" or (o.aug == "fixed" and o.augment_p > 0):
            from stylegan_ada.augment_pipe import make_augment_pipe

            self.augment_pipe = make_augment_pipe(o.augpipe, p=o.augment_p).train().requires_grad_(False)
            self.augment_pipe.to(self.device)

    def _restore_or_init(self) -> None:
        """Continue from the newest good snapshot pair, else start fresh (with the transfer source, if any)."""
        point, problems = rd.find_resume_point(self.run_dir, warn=self.log)
        if point is None:
            # Never from scratch while a good network snapshot exists (its weights and ADA p, fresh Adam state).
            fallback = continue_from_network(self.run_dir, self.nets, self.augment_pipe, problems, self.log)
            if fallback is not None:
                self.resumed_from, self.progress = fallback
                self.keep_tags = rd.network_tags(self.run_dir)  # never pruned: they have no training state
                if self.ctx.is_main:
                    rd.record_resume(self.run_dir, {"kind": "network-only", "snapshot": self.resumed_from,
                                                    "unusable": problems})
            elif self.inputs.init_from:
                self._transfer(self.inputs.init_from)
            return
        try:
            load_networks_into(point.network_path, self.nets, self.augment_pipe)
            state = point.state
            for phase in self.phases:
                if phase.name.endswith(("main", "both")):
                    key = phase.name[0] + "_opt"
                    phase.opt.load_state_dict(state[key])
                    reg = self.opts.G_reg_interval if key == "G_opt" else self.opts.D_reg_interval
                    apply_opt_kwargs(phase.opt, getattr(self.opts, key[0] + "_opt_kwargs"), reg)
            self.progress = Progress.from_state(state)
            self.loss.pl_mean.copy_(state["pl_mean"])
            if self.ada is not None and state.get("ada") is not None:
                self.ada.load_state_dict(state["ada"], self.device)
            if self.augment_pipe is not None and self.opts.aug == "fixed":  # ADA's p continues; a fixed p is set
                self.augment_pipe.p.fill_(self.opts.augment_p)
            restore_rng_from(state)
        except (KeyError, ValueError, TypeError, RuntimeError, TrainingStateError) as exc:
            raise TrainingError(f"cannot resume from {point.state_path.name}: {exc}; start a new run instead") from None
        self.resumed_from = point.tag
        if self.ctx.is_main:
            rd.record_resume(self.run_dir, {"kind": "pair", "snapshot": point.tag})
        self.log(f"Resuming from snapshot {point.tag} ({self.progress.cur_nimg / 1000:.3f} kimg, tick "
                 f"{self.progress.cur_tick})")

    def _transfer(self, path: str) -> None:
        from stylegan_ada.training.transfer import load_source, transfer

        source = self.inputs.init_source if self.inputs.init_source is not None else load_source(path)
        counts = transfer(source, self.nets, Path(path).name)
        for key, count in counts.items():
            self.log(f"Transfer {key} from {Path(path).name}: {count.describe()}")

    # ------------------------------------------------------------------------------------------------- reporting
    def _report(self, name: str, value: torch.Tensor) -> None:
        self.stats.report(name, value)
        if name == "Loss/signs/real" and self.ada is not None:
            self.ada.accumulate(value)

    # -------------------------------------------------------------------------------------------------- training
    def train(self, stop: StopRequest, show_progress: bool) -> RunResult:
        self._restore_or_init()
        pr, o = self.progress, self.opts
        total_nimg = int(round(o.total_kimg * 1000))
        if pr.cur_nimg >= total_nimg:
            self.log(f"Already trained {pr.cur_nimg / 1000:.3f} kimg >= --kimg {o.total_kimg}; nothing to do "
                     "(raise --kimg to train longer)")
            return RunResult("already_done", pr.cur_nimg, self._newest_network(), self.resumed_from)
        self.grid = None
        if self.ctx.is_main:
            self._prepare_outputs()
        self.tb = TickWriter(self.run_dir, self.log, pr.cur_nimg if self.resumed_from else None, self.ctx.is_main)
        self.log(f"Training to {o.total_kimg} kimg: {len(self.data)} images, batch {o.batch} "
                 f"({self.ctx.world_size} process(es) x {self.rounds} round(s) x {o.batch_gpu}), device {self.device}"
                 + (f" ({torch.get_num_threads()} threads)" if self.device.type == "cpu" else ""))
        bar = reporting.progress_bar(total_nimg, pr.cur_nimg, enabled=show_progress and self.ctx.is_main)
        self.session_start = time.time()
        self.tick_start_time = time.time()
        self.maintenance = 0.0
        try:
            while True:
                if self._stop_requested(stop):
                    self.log(f"Stop requested (signal {stop.signal}); writing a final snapshot")
                    path = self._snapshot()
                    return RunResult("stopped", pr.cur_nimg, path, self.resumed_from)
                if self.faults is not None:
                    self.faults.at_step(pr.batch_idx)
                self._step()
                bar.update(o.batch)
                done = pr.cur_nimg >= total_nimg
                if not done and pr.cur_tick != 0 and pr.cur_nimg < pr.tick_start_nimg + o.kimg_per_tick * 1000:
                    continue
                with reporting.bar_paused(bar):
                    self._end_tick(done)
                if done:
                    return RunResult("done", pr.cur_nimg, self._newest_network(), self.resumed_from)
        except OSError as exc:  # log.txt / stats.jsonl / grids (snapshot writes say more, see _write_error)
            raise self._write_error(exc, rd.snapshot_tag(pr.cur_nimg, None)) from exc
        finally:
            bar.close()
            self.tb.close()

    def _stop_requested(self, stop: StopRequest) -> bool:
        if not self.ctx.enabled:
            return stop.requested
        if self.progress.batch_idx % self.opts.ada_interval:  # a collective: only every few steps
            return False
        return any_rank(stop.requested, self.ctx)

    def _step(self) -> None:
        """One minibatch: all due phases, G_ema, counters, ADA."""
        o, pr, ctx = self.opts, self.progress, self.ctx
        per_process = o.batch // ctx.world_size
        items = self.order.items(pr.data_pos, o.batch)[ctx.rank * per_process:(ctx.rank + 1) * per_process]
        real_img, real_c = self.data.fetch(items)
        real_img, real_c = real_img.split(o.batch_gpu), real_c.split(o.batch_gpu)
        for phase_idx, phase in enumerate(self.phases):
            if pr.batch_idx % phase.interval:
                continue
            phase.opt.zero_grad(set_to_none=True)
            phase.module.requires_grad_(True)
            params = phase.params
            loss = self.compiled.loss_for(phase.name)
            for r in range(self.rounds):
                seed_round(o.seed, pr.batch_idx, phase_idx, ctx.rank * self.rounds + r)
                gen_z = torch.randn([o.batch_gpu, self.G.z_dim], device=self.device)
                gen_c = self.data.random_labels(o.batch_gpu, self.device)
                # Each round's gradient is computed alone and then added, as an all-reduce over processes
                # would add them, so N rounds in one process equal N processes of one round.
                earlier = self.compiled.keep([p.grad for p in params]) if r else None
                if earlier:
                    for p in params:
                        p.grad = None
                self.compiled.begin_round(phase.name)
                with precision.autocast(o.precision, self.device):
                    loss.accumulate_gradients(phase.name, real_img[r], real_c[r], gen_z, gen_c,
                                              gain=phase.interval / self.rounds)
                if earlier:
                    for p, g in zip(params, earlier):
                        if g is not None:
                            p.grad = g if p.grad is None else g + p.grad
            phase.module.requires_grad_(False)
            self.loss.end_phase(lambda t: all_reduce_sum(t, ctx), ctx.world_size)
            average_gradients(params, ctx)
            phase.opt.step()
        self.ema.update(ema_beta(o, pr.cur_nimg))
        pr.cur_nimg += o.batch
        pr.data_pos += o.batch
        pr.batch_idx += 1
        if self.ada is not None:
            self.ada.end_minibatch(self.augment_pipe)  # every ada_interval minibatches: p from r_t, on device

    # ---------------------------------------------------------------------------------------------- maintenance
    def _prepare_outputs(self) -> None:
        from stylegan_ada.training.grids import FakesGrid

        self.grid = FakesGrid(self.data, self.G.z_dim, self.opts.seed, self.device)
        reals = self.run_dir / rd.REALS_NAME
        if not reals.exists():
            self.grid.save_reals(self.data, reals)
        reporting.truncate_stats(self.run_dir / rd.STATS_NAME, self.progress.cur_nimg)
        for tmp in self.run_dir.glob(".*.tmp"):  # temp files of a killed writer
            tmp.unlink(missing_ok=True)

    def _end_tick(self, done: bool) -> None:
        o, pr = self.opts, self.progress
        tick = pr.cur_tick
        tick_end = time.time()
        summary = self.stats.summarize(lambda t: all_reduce_sum(t, self.ctx), self.ctx.world_size)
        record = reporting.tick_record(
            tick=tick, cur_nimg=pr.cur_nimg, tick_nimg=pr.cur_nimg - pr.tick_start_nimg,
            tick_seconds=tick_end - self.tick_start_time, maintenance=self.maintenance,
            total_seconds=pr.wall_seconds + tick_end - self.session_start, stats=summary,
            augment_p=float(self.augment_pipe.p) if self.augment_pipe is not None else 0.0,
            rt=self.ada.r_t if self.ada is not None else None, device=self.device,
            total_nimg=int(round(o.total_kimg * 1000)))
        self.log(reporting.status_line(record))
        pr.cur_tick += 1
        pr.tick_start_nimg = pr.cur_nimg
        if self.ctx.is_main and (done or tick % o.image_snap == 0):
            fakes = self.run_dir / f"fakes{pr.cur_nimg // 1000:06d}.png"
            self.grid.save_fakes(self.G_ema, fakes, max(o.batch_gpu, 16), force_fp32=self.device.type != "cuda")
            self.tb.image(fakes, pr.cur_nimg)
        if done or tick % o.snap == 0:
            self._snapshot(record)
        elif self.ctx.is_main:
            reporting.append_record(self.run_dir / rd.STATS_NAME, record)
        self.tb.tick(record)
        self.tick_start_time = time.time()
        self.maintenance = self.tick_start_time - tick_end

    def _snapshot(self, record: dict[str, Any] | None = None) -> Path | None:
        """Write the pair for the current step (rank 0) and prune.

        Order: network snapshot, metrics, the tick's stats record (``record``), training state. A kill before the
        state leaves the previous pair as the resume point, and resuming drops stats records past it, so every tick
        appears in stats.jsonl exactly once.
        """
        pr = self.progress
        if pr.last_snapshot_nimg == pr.cur_nimg:
            return self._newest_network()
        tag = rd.snapshot_tag(pr.cur_nimg, pr.last_snapshot_nimg)
        path = None
        if self.ctx.is_main:
            previous = pr.last_snapshot_nimg
            try:
                path = save_network(self.run_dir, tag, nets=self.nets, augment_pipe=self.augment_pipe,
                                    training_set_kwargs=self.inputs.training_set_kwargs, extra=self._extra(),
                                    log=self.log)
                if self.faults is not None:
                    self.faults.in_snapshot()
                if self.opts.metrics != "none":
                    self._evaluate_metrics(tag)
                if record is not None:
                    record["snapshot"] = path.name
                    if pr.metric_history and pr.metric_history[-1].get("nimg") == pr.cur_nimg:
                        record["metrics"] = pr.metric_history[-1]
                    reporting.append_record(self.run_dir / rd.STATS_NAME, record)
                pr.last_snapshot_nimg = pr.cur_nimg
                pr.wall_seconds += time.time() - self.session_start
                self.session_start = time.time()
                save_state(self.run_dir, tag, path, self._state())
            except OSError as exc:
                pr.last_snapshot_nimg = previous
                discard_network(path)  # half a pair is no resume point, and would fill the disk on the retry
                raise self._write_error(exc, tag) from exc
            rd.prune_snapshots(self.run_dir, tag, self.opts.keep, protect=self._best_tags() + self.keep_tags)
            self.log(f"Saved snapshot {tag} ({path.name} + {rd.state_path(self.run_dir, tag).name})")
        else:
            pr.last_snapshot_nimg = pr.cur_nimg
        barrier(self.ctx)
        return path

    def _write_error(self, exc: OSError, tag: str) -> TrainingError:
        return TrainingError(write_failure_message(self.run_dir, exc, tag))

    def _extra(self) -> dict[str, Any]:
        pr = self.progress
        return dict(self.opts.extra, cur_nimg=pr.cur_nimg, kimg=pr.cur_nimg / 1000, tick=pr.cur_tick,
                    batch_idx=pr.batch_idx, seed=self.opts.seed)

    def _state(self) -> dict[str, Any]:
        state = self.progress.to_state()
        for phase in self.phases:
            if phase.name.endswith(("main", "both")):
                state[phase.name[0] + "_opt"] = phase.opt.state_dict()
        state["pl_mean"] = self.loss.pl_mean.detach().cpu()
        state["ada"] = self.ada.state_dict() if self.ada is not None else None
        state["augment_p"] = self.augment_pipe.p.detach().cpu() if self.augment_pipe is not None else None
        state["options"] = self.opts.to_dict()
        state["data"] = {"num_items": len(self.data), "seed": self.opts.seed}
        return state

    def _evaluate_metrics(self, tag: str) -> None:
        from stylegan_ada.training.metrics_hook import evaluate

        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            result = evaluate(self.G_ema, self.data, self.opts, self.device, log=self.log)
        if result is not None:
            self.progress.metric_history.append(dict(result, tag=tag, nimg=self.progress.cur_nimg))

    def _best_tags(self) -> list[str]:
        key = self.opts.metrics
        scored = [m for m in self.progress.metric_history if isinstance(m.get(key), (int, float))]
        return [min(scored, key=lambda m: m[key])["tag"]] if scored else []

    def _newest_network(self) -> Path | None:
        tags = rd.network_tags(self.run_dir)
        return rd.network_path(self.run_dir, tags[-1]) if tags else None
