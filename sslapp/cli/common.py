"""Shared CLI habits: JSON on stdout, messages on stderr, exit code 0 only on success."""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

from sslapp.words import count
from sslapp.workspace import Workspace, WorkspaceError, open_workspace


class CLIError(Exception):
    """A failure with a message for the user and an exit code."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(obj: Any, as_json: bool, text: str | None = None) -> None:
    """Print `obj` as JSON with --json, else the human text (on stdout, as it is the command's output)."""
    if as_json:
        print(json.dumps(obj, indent=None, default=str), flush=True)
    elif text is not None:
        print(text, flush=True)


def workspace_arg(path: str, create: bool = False) -> Workspace:
    try:
        return open_workspace(path, create=create)
    except WorkspaceError as exc:
        raise CLIError(str(exc), 2) from exc


def plural(ws: Workspace) -> str:
    """What the workspace's items are called in messages ("images", "texts")."""
    from sslapp.modalities import workspace_modality

    return workspace_modality(ws).plural


def count_items(ws: Workspace, n: int) -> str:
    """`n` of the workspace's items in words: "1 image", "3 texts"."""
    from sslapp.modalities import workspace_modality

    modality = workspace_modality(ws)
    return count(n, modality.noun, modality.plural)


def no_items_error(ws: Workspace) -> CLIError:
    """The refusal for a command that needs items, in an empty workspace: what to run first."""
    return CLIError(f"{ws.root} has no items yet; add some with `sslapp ingest {ws.root} FOLDER_OR_FILE`", 1)


def handle_errors(func):
    """Turn CLIError (and workspace errors) into a message on stderr and an exit code."""

    def wrapper(args) -> int:
        try:
            return int(func(args) or 0)
        except (CLIError, WorkspaceError) as exc:
            say(f"sslapp {args.command}: {exc}")
            return getattr(exc, "code", 2)

    wrapper.__doc__ = func.__doc__
    return wrapper


def run_job_in_foreground(ws: Workspace, kind: str, params: dict[str, Any],
                          job_id: int | None = None) -> dict[str, Any]:
    """Enqueue a job (or take `job_id`) and run it in this process, as the worker would.

    Ctrl-C or SIGTERM asks the job to cancel, so it stops cleanly and keeps its checkpoint.
    """
    from sslapp.jobs.worker import execute_job

    if job_id is None:
        job_id = ws.store.enqueue_job(kind, params)
    job = ws.store.claim_job(job_id, os.getpid())
    if job is None:
        raise CLIError(f"job {job_id} is not queued (status {ws.store.job_status(job_id)}); "
                       "resume it first with `sslapp jobs resume`.")

    def ask_cancel(signum, frame):
        say(f"stopping job {job_id} (cancel requested); its last checkpoint is kept")
        ws.store.request_job_stop(job_id, "cancel")

    old_int = signal.signal(signal.SIGINT, ask_cancel)
    old_term = signal.signal(signal.SIGTERM, ask_cancel)
    try:
        return execute_job(ws, job)
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
