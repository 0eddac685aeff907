"""`sslapp info WORKSPACE [--json]`: counts of items, labels per class, jobs and latest runs."""

from __future__ import annotations

from sslapp.cli.common import emit, handle_errors, workspace_arg


def register(sub) -> None:
    p = sub.add_parser("info", help="what a workspace holds")
    p.add_argument("workspace")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


@handle_errors
def run(args) -> int:
    ws = workspace_arg(args.workspace)
    from sslapp.features.imported import unusable_reason
    from sslapp.features.read import CHOICE_SETTING, PINNED_SETTING, describe, encoders

    info = {"workspace": str(ws.root), "cache_size": ws.cache_size, **ws.store.info()}
    choice = ws.store.get_setting(CHOICE_SETTING) or {}
    scores = {c["encoder_artifact_id"]: c.get("score") for c in choice.get("candidates", [])}
    ids = [i for i, _ in ws.store.item_ids_and_cache_index()]
    info["encoders"] = [{"id": a["id"], "name": describe(a), "score": scores.get(a["id"]),
                         "in_use": a["id"] == choice.get("encoder_artifact_id"),
                         "left_out": unusable_reason(ws, a, ids)} for a in encoders(ws)]
    info["embedding"] = {"in_use": choice.get("name"), "reason": choice.get("reason"),
                         "pinned": ws.store.get_setting(PINNED_SETTING)}
    lines = [f"workspace {info['workspace']}", f"items     {info['items']}", f"labels    {info['labels']}"]
    lines += [f"  {name}: {n}" for name, n in info["labels_per_class"].items()]
    lines.append("jobs      " + (", ".join(f"{k}: {v}" for k, v in info["jobs"].items()) or "none"))
    lines += [f"run {r['id']} {r['kind']} {r['status']}" for r in info["latest_runs"]]
    lines.append("encoders  " + ("" if info["encoders"] else "none yet (made when the worker first needs features)"))
    lines += [f"  {e['id']}: {e['name']}" + (f", {e['score']:.0%} on your labels" if e["score"] is not None else "")
              + ("  <- in use" if e["in_use"] else "") + (f"  (left out: {e['left_out']})" if e["left_out"] else "")
              for e in info["encoders"]]
    if info["embedding"]["reason"]:
        lines.append(f"embedding {info['embedding']['reason']}")
    emit(info, args.json, "\n".join(lines))
    return 0
