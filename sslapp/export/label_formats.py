"""Label files other tools read and write: Label Studio JSON and COCO-style classification JSON.

Writers take the rows of `sslapp.export.labels.label_rows` (one schema); readers turn a parsed
file into `LabelEntry`s, each naming where it came from ("task 3 (id 17)") so a message can
point at it, plus the entries that are bad, with the reason. Nothing here touches a workspace:
`sslapp.export.label_import` matches entries to items and stores them, all or nothing.

- **Label Studio** (an export of a project with a `Choices` tag): a list of tasks, each with
  `data` (the file: `data.image`) and `annotations[].result[]` of type `choices`. The latest
  annotation that was not cancelled counts (by `updated_at`, else `created_at`, else its place).
  Who gave it: `sslapp_annotator` (sslapp's own field, which Label Studio ignores on import, so the
  file imports there as the importing user), else `completed_by` (`{"email": ...}` or a user id).
  Machine guesses go in `predictions` and are never read back as labels.
- **COCO-style classification**: `images` (`id`, `file_name`), `categories` (`id`, `name`) and
  `annotations` (`image_id`, `category_id`, optional `annotator`); an annotation with `source`
  `propagated` (sslapp's machine guess, with its `score`) is never read back as a label.
- **sslapp JSON**: the list of rows `labels.json` holds (the CSV's columns).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MACHINE_SOURCE = "propagated"
LS_FROM_NAME, LS_MODEL = "class", "sslapp classifier"
CLASS_KEYS = ("class", "label", "class_name")
ANNOTATOR_KEYS = ("annotator", "annotated_by", "completed_by")
DATA_KEYS = ("image", "img", "url", "path", "file", "audio", "text")  # where a task's data names its file


class LabelFileError(ValueError):
    """A label file that cannot be read at all (not UTF-8, not JSON, not a format sslapp reads)."""


@dataclass
class LabelEntry:
    """One label a file gives: where it is, how to find its item, the class and who gave it."""

    where: str  # "line 4", "task 3 (id 17)", "annotation 2 (id 9)", "entry 5"
    class_name: str
    item_id: int | None = None
    sha256: str | None = None
    path: str | None = None
    annotator: str | None = None


@dataclass
class LabelRead:
    """What a reader found: usable entries, bad ones (where, reason), machine guesses and unlabelled tasks left out."""

    format: str
    entries: list[LabelEntry] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)
    propagated: int = 0
    unlabelled: int = 0


def text(value: Any) -> str | None:
    """A cell or JSON value as stripped text; None for missing, empty or non-scalar values."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    out = str(value).strip()
    return out or None


def item_number(value: Any) -> int | None:
    """An item id from a cell or JSON value (digits only), else None."""
    value = text(value)
    return int(value) if value is not None and value.isdigit() else None


# -- writers ----------------------------------------------------------------------------------------
def _iso(seconds: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds if seconds is not None else time.time()))


def to_label_studio(rows: list[dict[str, Any]], data_key: str = "image") -> list[dict[str, Any]]:
    """One Label Studio task per row: the item's path in `data[data_key]`, a person's label as an
    annotation, a machine guess as a prediction with its score."""
    tasks = []
    for row in rows:
        result = [{"id": f"sslapp-{row['item_id']}", "from_name": LS_FROM_NAME, "to_name": data_key,
                   "type": "choices", "value": {"choices": [row["class"]]}}]
        task: dict[str, Any] = {"id": row["item_id"], "data": {data_key: row["path"], "sslapp_item_id": row["item_id"],
                                                              "sha256": row["sha256"]},
                                "annotations": [], "predictions": []}
        if row["source"] == MACHINE_SOURCE:
            task["predictions"].append({"model_version": LS_MODEL, "score": row["confidence"], "result": result})
        else:
            task["annotations"].append({"id": row["item_id"], "result": result, "was_cancelled": False,
                                        "ground_truth": False, "sslapp_annotator": row.get("annotator"),
                                        "sslapp_source": row["source"]})
        tasks.append(task)
    return tasks


def to_coco(rows: list[dict[str, Any]], classes: list[str] | None = None) -> dict[str, Any]:
    """COCO-style classification: one image per row, one category per class, one annotation per label."""
    names = list(dict.fromkeys([*(classes or []), *(r["class"] for r in rows)]))
    category = {name: i + 1 for i, name in enumerate(names)}
    annotations = []
    for n, row in enumerate(rows, start=1):
        ann: dict[str, Any] = {"id": n, "image_id": row["item_id"], "category_id": category[row["class"]],
                               "annotator": row.get("annotator"), "source": row["source"]}
        if row["source"] == MACHINE_SOURCE:
            ann["score"] = row["confidence"]
        annotations.append(ann)
    return {"info": {"description": "labels from sslapp (one class per image)", "date_created": _iso(None)},
            "images": [{"id": r["item_id"], "file_name": r["path"], "sha256": r["sha256"]} for r in rows],
            "categories": [{"id": i, "name": name} for name, i in category.items()],
            "annotations": annotations}


# -- readers ----------------------------------------------------------------------------------------
def detect_json(obj: Any) -> str:
    """Which label format a parsed JSON file is: `label-studio`, `coco` or `json` (sslapp's rows)."""
    if isinstance(obj, dict) and {"images", "annotations"} <= set(obj):
        return "coco"
    if isinstance(obj, list):  # the entries that are no objects become bad entries of the format found
        objects = [t for t in obj if isinstance(t, dict)]
        if any("data" in t or "annotations" in t for t in objects):
            return "label-studio"
        if any(k in t for t in objects for k in CLASS_KEYS):
            return "json"
    if isinstance(obj, list) and not obj:
        return "json"
    raise LabelFileError("it is not a label file sslapp reads: expected a Label Studio export (a list of tasks "
                         "with `data` and `annotations`), a COCO-style file (`images`, `categories`, "
                         "`annotations`) or sslapp's labels.json (a list of rows with `class`)")


def read_sslapp_json(obj: Any) -> LabelRead:
    """sslapp's labels.json: a list of rows with `class` and `item_id`, `path` or `sha256`."""
    out = LabelRead("json")
    if not isinstance(obj, list):
        raise LabelFileError("sslapp's labels.json is a list of rows; this file is not a list")
    for n, row in enumerate(obj, start=1):
        where = f"entry {n}"
        if not isinstance(row, dict):
            out.bad.append((where, "is not an object with `class` and `path`"))
            continue
        if text(row.get("source")) == MACHINE_SOURCE:
            out.propagated += 1
            continue
        name = next((text(row.get(k)) for k in CLASS_KEYS if text(row.get(k))), None)
        entry = LabelEntry(where, name or "", item_number(row.get("item_id")), text(row.get("sha256")),
                           text(row.get("path")), next((text(row.get(k)) for k in ANNOTATOR_KEYS
                                                        if text(row.get(k))), None))
        if not name:
            out.bad.append((where, "has no class (`class`)"))
        elif entry.item_id is None and not entry.sha256 and not entry.path:
            out.bad.append((where, "names no item (`item_id`, `path` or `sha256`)"))
        else:
            out.entries.append(entry)
    return out


def _when(annotation: dict[str, Any]) -> datetime | None:
    for key in ("updated_at", "created_at"):
        value = text(annotation.get(key))
        if value:
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
    return None


def _latest(annotations: list[Any]) -> dict[str, Any] | None:
    """The newest annotation not cancelled (by time where all have one, else the last in the list)."""
    live = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")]
    if not live:
        return None
    times = [_when(a) for a in live]
    if all(t is not None for t in times):
        try:
            return max(zip(times, range(len(live)), live, strict=True))[2]
        except TypeError:  # some with a time zone, some without
            pass
    return live[-1]


def _ls_annotator(annotation: dict[str, Any]) -> str | None:
    own = text(annotation.get("sslapp_annotator"))
    if own:
        return own
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        name = " ".join(p for p in (text(who.get("first_name")), text(who.get("last_name"))) if p)
        return text(who.get("email")) or name or (f"Label Studio user {who['id']}" if "id" in who else None)
    number = item_number(who)
    return f"Label Studio user {number}" if number is not None else None


def _ls_file(data: dict[str, Any], data_key: str) -> str | None:
    for key in (data_key, *DATA_KEYS):
        if text(data.get(key)):
            return text(data.get(key))
    values = [text(v) for k, v in data.items() if k not in ("sslapp_item_id", "sha256") and text(v)]
    return values[0] if len(values) == 1 else None


def read_label_studio(obj: Any, data_key: str = "image") -> LabelRead:
    """Tasks of a Label Studio export: the latest annotation's single `choices` value per task."""
    out = LabelRead("label-studio")
    if not isinstance(obj, list):
        raise LabelFileError("a Label Studio export is a list of tasks; this file is not a list")
    for n, task in enumerate(obj, start=1):
        where = f"task {n}" + (f" (id {task['id']})" if isinstance(task, dict) and "id" in task else "")
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            out.bad.append((where, "has no `data` object naming its file"))
            continue
        annotations = task.get("annotations", [])
        if not isinstance(annotations, list):
            out.bad.append((where, "`annotations` is not a list"))
            continue
        latest = _latest(annotations)
        if latest is None:
            out.propagated += bool(task.get("predictions"))
            out.unlabelled += not task.get("predictions")
            continue
        result = latest.get("result")
        chosen = [c for r in (result if isinstance(result, list) else []) if isinstance(r, dict)
                  and r.get("type") == "choices" and isinstance(r.get("value"), dict)
                  for c in (r["value"].get("choices") or [])]
        names = list(dict.fromkeys(t for t in (text(c) for c in chosen) if t))
        if len(names) != 1:
            out.bad.append((where, "its latest annotation chooses no class (sslapp reads a `choices` result)"
                            if not names else f"its latest annotation chooses {len(names)} classes "
                            f"({', '.join(names)}); sslapp keeps one class per item"))
            continue
        data = task["data"]
        entry = LabelEntry(where, names[0], item_number(data.get("sslapp_item_id")), text(data.get("sha256")),
                           _ls_file(data, data_key), _ls_annotator(latest))
        if entry.item_id is None and not entry.sha256 and not entry.path:
            out.bad.append((where, f"its `data` names no file (expected `data.{data_key}`)"))
            continue
        out.entries.append(entry)
    return out


def _by_id(rows: Any, what: str, needs: tuple[str, ...], out: LabelRead) -> dict[Any, dict[str, Any]]:
    """COCO `images` or `categories` by id; a row without what it needs, or an id given twice, is bad."""
    if not isinstance(rows, list):
        raise LabelFileError(f"`{what}` must be a list")
    found: dict[Any, dict[str, Any]] = {}
    for n, row in enumerate(rows, start=1):
        where = f"{what[:-1]} {n}" + (f" (id {row['id']})" if isinstance(row, dict) and "id" in row else "")
        if not isinstance(row, dict) or any(text(row.get(k)) is None for k in needs):
            out.bad.append((where, f"needs {' and '.join(f'`{k}`' for k in needs)}"))
        elif row["id"] in found:
            out.bad.append((where, f"repeats id {row['id']}; each of the {what} needs its own id"))
        else:
            found[row["id"]] = row
    return found


def read_coco(obj: Any) -> LabelRead:
    """A COCO-style classification file: each annotation gives its image the annotation's category."""
    out = LabelRead("coco")
    if not isinstance(obj, dict):
        raise LabelFileError("a COCO file is an object with `images`, `categories` and `annotations`")
    images = _by_id(obj.get("images"), "images", ("id", "file_name"), out)
    categories = _by_id(obj.get("categories", []), "categories", ("id", "name"), out)
    annotations = obj.get("annotations")
    if not isinstance(annotations, list):
        raise LabelFileError("`annotations` must be a list")
    for n, ann in enumerate(annotations, start=1):
        where = f"annotation {n}" + (f" (id {ann['id']})" if isinstance(ann, dict) and "id" in ann else "")
        if not isinstance(ann, dict):
            out.bad.append((where, "is not an object with `image_id` and `category_id`"))
            continue
        if text(ann.get("source")) == MACHINE_SOURCE:
            out.propagated += 1
            continue
        image, category = images.get(ann.get("image_id")), categories.get(ann.get("category_id"))
        if image is None or category is None:
            missing = [f"`{k}` {ann.get(k)!r} is not in `{what}`" for k, what, found in
                       (("image_id", "images", image), ("category_id", "categories", category)) if found is None]
            out.bad.append((where, "; ".join(missing)))
            continue
        out.entries.append(LabelEntry(where, text(category["name"]) or "", item_number(image.get("sslapp_item_id")),
                                      text(image.get("sha256")), text(image["file_name"]),
                                      next((text(ann.get(k)) for k in ANNOTATOR_KEYS if text(ann.get(k))), None)))
    return out


def upload_name(name: str) -> str | None:
    """A file name as Label Studio stores an upload (`8f7e2a1c-cat1.jpg`) without its prefix, else None."""
    match = re.fullmatch(r"[0-9a-f]{8}-(.+)", name)
    return match.group(1) if match else None
