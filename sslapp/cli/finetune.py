"""`sslapp finetune WORKSPACE [--mode auto|linear|full] [--propagate auto|on|off] [--json]`."""

from __future__ import annotations

from sslapp.cli.common import CLIError, emit, handle_errors, say, workspace_arg


def register(sub) -> None:
    p = sub.add_parser("finetune", help="train a classifier on the labels (linear probe or full fine-tune)")
    p.add_argument("workspace")
    p.add_argument("--mode", default="auto", choices=["auto", "linear", "full"],
                   help="linear: probe on frozen embeddings; full: fine-tune the encoder; auto: linear unless "
                        "a GPU and >= 20 labels per class")
    p.add_argument("--propagate", default="auto", choices=["auto", "on", "off", "poisson", "spreading", "self-training"],
                   help="use the unlabelled images through Poisson learning, label spreading or self-training "
                        "(auto: measured)")
    p.add_argument("--epochs", type=int, default=None, help="full mode: most epochs (early stopping may end sooner)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


@handle_errors
def run(args) -> int:
    from sslapp.cli.common import run_job_in_foreground

    ws = workspace_arg(args.workspace)
    params = {"mode": args.mode, "propagate": args.propagate, "seed": args.seed}
    if args.epochs is not None:
        if args.epochs < 1:
            raise CLIError("--epochs must be at least 1", 2)
        params["epochs"] = args.epochs
    job = run_job_in_foreground(ws, "finetune", params)
    result = job.get("result") or {}
    out = {"job": job.get("id"), "status": job.get("status"), "mode": result.get("mode"),
           "classes": result.get("classes"), "estimate": result.get("estimate"),
           "classifier": str(ws.root / result["classifier"]) if result.get("classifier") else None,
           "warnings": result.get("warnings", []), "error": job.get("error")}
    if job.get("status") != "done":
        emit(out, args.json)
        raise CLIError(f"job {job.get('id')} {job.get('status')}: {job.get('error') or 'stopped'}")
    for w in result.get("warnings", []):
        say(f"warning: {w}")
    est = result.get("estimate") or {}
    emit(out, args.json, f"{result.get('mode')} classifier for {', '.join(result.get('classes') or [])}\n"
         f"estimated accuracy: {est.get('text')}\nsaved to {out['classifier']}")
    return 0
