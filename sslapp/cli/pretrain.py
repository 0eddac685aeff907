"""`sslapp pretrain WORKSPACE`: self-supervised pretraining in the foreground (also under torchrun)."""

from __future__ import annotations

import threading

from sslapp.cli.common import CLIError, emit, handle_errors, run_job_in_foreground, say, workspace_arg
from sslapp.words import count


def register(sub) -> None:
    p = sub.add_parser("pretrain", help="pretrain an encoder on the workspace's items (SimCLR, ...; SimCSE, "
                       "Word2Vec for texts)",
                       description="Pretrain an encoder with a self-supervised method. Progress goes to stderr; "
                       "Ctrl-C cancels and keeps the last checkpoint. Under `torchrun --nproc_per_node N` it "
                       "trains with DistributedDataParallel and only rank 0 writes.")
    p.add_argument("workspace")
    p.add_argument("--method", help="images: simclr (default), mocov3, byol, swav, dino, mae, rotation, jigsaw or "
                   "colorization (colour images only); "
                   "texts: simcse (default), word2vec, mlm or mlm-scratch; "
                   "sounds: simclr (default), byol-a, cpc, wav2vec, byol, mocov3, swav, dino or mae, on log-mel pictures "
                   "with the audio views")
    p.add_argument("--backbone", default="auto",
                   help="auto, resnet18/34/50 (+ -std), resnet18-w16/-w32 (narrow), vit-tiny, vit-small, "
                        "efficientnet-lite0")
    p.add_argument("--init", default="auto",
                   help="starting weights: auto (ImageNet where they ship), scratch, imagenet, patches (scratch with "
                        "the first layer from a dictionary of your images' patches), or a weights file "
                        "(.pt/.pth/.safetensors state dict of the same backbone)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help="train for N epochs")
    length.add_argument("--minutes", type=float, help="train for about M minutes (default on CPU with auto: 10)")
    p.add_argument("--batch-size", type=int, help="images per step (per process); default by device")
    p.add_argument("--train-size", type=int, help="side in px the backbone trains at; default by device")
    p.add_argument("--lr", type=float, help="learning rate (default: the method's, scaled with the batch)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--resume", type=int, metavar="JOB", help="resume a paused, cancelled, failed or "
                   "interrupted pretrain job from its last checkpoint")
    p.add_argument("--compile", action="store_true", help="torch.compile the backbone (CUDA)")
    p.add_argument("--no-probe", action="store_true", help="skip the per-epoch representation probe")
    p.add_argument("--probe-size", type=int, help="images the probe embeds each epoch (default 1000)")
    p.add_argument("--json", action="store_true", help="print the final result as JSON on stdout")
    p.set_defaults(func=run)


def _params(args) -> dict:
    params = {"method": args.method, "backbone": args.backbone, "init": args.init, "epochs": args.epochs, "minutes": args.minutes,
              "batch_size": args.batch_size, "train_size": args.train_size, "lr": args.lr,
              "device": args.device, "seed": args.seed, "compile": args.compile, "threads": args.threads,
              "probe": not args.no_probe, "probe_size": args.probe_size}
    return {k: v for k, v in params.items() if v is not None}


class _ProgressPrinter(threading.Thread):
    """Prints the job's progress to stderr every few seconds while it runs in this process."""

    def __init__(self, ws, job_id: int, unit: str = "img"):
        super().__init__(daemon=True)
        self.ws, self.job_id, self.done, self.unit = ws, job_id, threading.Event(), unit
        self.last_message = None
        self.last_line = None

    def run(self) -> None:
        while not self.done.wait(2.0):
            try:
                job = self.ws.store.job(self.job_id)
            except Exception:
                continue
            p = (job or {}).get("progress") or {}
            if p.get("message") and p["message"] != self.last_message:
                self.last_message = p["message"]
                say(p["message"])
            line = (p.get("epoch"), p.get("step"), p.get("loss"))
            if "loss" in p and "images_per_s" in p and line != self.last_line:
                self.last_line = line
                epochs = p.get("epochs") or "?"
                say(f"epoch {p.get('epoch')}/{epochs} step {p.get('step')}/{p.get('steps')} "
                    f"loss {p.get('loss')} {p.get('images_per_s')} {self.unit}/s eta {p.get('eta_s', '?')} s")


@handle_errors
def run(args) -> int:
    from sslapp.modalities import method_refusal, pretrain_refusal, workspace_modality
    from sslapp.ssl import ddp

    modality = workspace_modality(workspace_arg(args.workspace))
    refusal = pretrain_refusal(modality)
    if refusal:  # before any job is queued: nothing is stored
        raise CLIError(refusal.replace(" WS", f" {args.workspace}"), 2)
    if args.resume is None:
        args.method = args.method or modality.ssl_methods[0]
        refusal = method_refusal(modality, args.method)
        if refusal:
            raise CLIError(refusal.replace(" WS", f" {args.workspace}"), 2)
    image_only = [flag for flag, given in (("--backbone", args.backbone != "auto"), ("--init", args.init != "auto"),
                                           ("--train-size", args.train_size is not None), ("--compile", args.compile))
                  if given]
    if modality.name == "text" and image_only:  # said, not silently ignored
        raise CLIError(f"{', '.join(image_only)} choose an image network; {modality.plural} have none to choose: "
                       "SimCSE and MLM tune the shipped MiniLM, mlm-scratch and Word2Vec learn from scratch. Pick "
                       "one with --method and leave these out.", 2)
    if modality.name != "image" and ddp.torchrun_env() is not None:
        raise CLIError(f"pretraining on {modality.plural} runs in one process; run `sslapp pretrain` without "
                       "torchrun", 2)
    info = ddp.init_distributed(args.device)
    try:
        if info.enabled and not info.is_main:
            return _run_follower(args)
        return _run_main(args)
    finally:
        ddp.cleanup()


def _run_follower(args) -> int:
    """A rank > 0 under torchrun: trains its shard, writes nothing; rank 0 owns the job."""
    from sslapp.jobs.context import JobStopped
    from sslapp.ssl import ddp
    from sslapp.ssl.train import PretrainError, pretrain

    ws = workspace_arg(args.workspace)
    try:
        result = pretrain(ws, _params(args))
    except JobStopped:
        return 1
    except PretrainError as exc:
        raise CLIError(str(exc)) from exc
    say(f"rank {ddp.current().rank}: trained {count(result['steps'], 'step')} on its shard, "
        f"last epoch loss {result['loss']}")
    return 0


def _run_main(args) -> int:
    from sslapp.jobs.worker import reap_dead_jobs

    ws = workspace_arg(args.workspace)
    if ws.store.count_items() == 0:
        raise CLIError(f"{ws.root} has no items; add some with `sslapp ingest {ws.root} FILES...` first.", 2)
    job_id = None
    if args.resume is not None:
        reap_dead_jobs(ws)
        job = ws.store.job(args.resume)
        if job is None or job["kind"] != "pretrain":
            raise CLIError(f"job {args.resume} is not a pretrain job of this workspace", 2)
        if not ws.store.resume_job(args.resume):
            raise CLIError(f"job {args.resume} cannot be resumed (status {job['status']}); only paused, "
                           "cancelled, failed or interrupted jobs can.", 2)
        job_id = args.resume
    else:
        job_id = ws.store.enqueue_job("pretrain", _params(args))
    say(f"pretrain job {job_id} in {ws.root}")
    from sslapp.modalities import workspace_modality

    modality = workspace_modality(ws)
    unit = "img" if modality.name == "image" else modality.plural
    printer = _ProgressPrinter(ws, job_id, unit)
    printer.start()
    try:
        job = run_job_in_foreground(ws, "pretrain", {}, job_id=job_id)
    finally:
        printer.done.set()
    status = job.get("status")
    result = job.get("result") or {}
    params = job.get("params") or {}
    run_row = ws.store.run_for_job(job_id)
    checkpoint = result.get("checkpoint")
    if checkpoint is None and run_row is not None:
        ck = ws.store.latest_checkpoint(run_id=run_row["id"])
        checkpoint = str(ws.root / ck["path"]) if ck else None
    out = {"job": job_id, "status": status,
           "method": result.get("method", params.get("method")),
           "backbone": result.get("backbone", params.get("backbone")),
           "epochs": result.get("epochs", 0), "images_per_s": result.get("images_per_s", 0.0),
           "checkpoint": checkpoint}
    if status != "done":
        say(f"pretrain job {job_id} {status}" + (f": {job.get('error')}" if job.get("error") else "")
            + (f"; resume with `sslapp pretrain {ws.root} --resume {job_id}`" if checkpoint else ""))
    emit(out, args.json, f"job {job_id} {status}: {out['method']} {out['backbone']} {count(out['epochs'], 'epoch')}, "
         f"{out['images_per_s']} {unit}/s, checkpoint {checkpoint}")
    return 0 if status == "done" else 1
