"""Label sets: Label Studio exports in, versioned JSONL label sets out.

A label set lives in ``labels/`` as ``<name>-v<N>.jsonl`` files, one
:class:`~annotate.schemas.LabeledSentence` per line, listed in
``labels/manifest.json``. A new version is written only when the content
changes; old versions are never overwritten, so no annotation is lost.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from ._io import atomic_write, dumps_line, read_jsonl
from .errors import DatasetError, InputError, SchemaError
from .labels import LABELS
from .schemas import AnnotatorChoice, LabeledSentence
from .segment import detect_lang

MANIFEST = "manifest.json"
_VERSIONED_FILE = re.compile(r"^(?P<name>.+)-v(?P<version>\d+)\.jsonl$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]*$")


class ImportReport(BaseModel):
    """What importing an export did to the label set."""

    name: str
    file: str | None = None
    version: int
    changed: bool
    tasks: int
    rows: int
    skipped_cancelled: int
    without_annotations: int
    disagreements: int
    ties: int
    new: int
    updated: int
    removed: int


# --- reading Label Studio exports -------------------------------------------------


def read_export(path: Path) -> list[dict[str, Any]]:
    """Read a Label Studio JSON or JSON_MIN export file (a JSON array of tasks)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror})", path=path) from e
    if not raw.strip():
        raise InputError("empty file: expected a Label Studio JSON export", path=path)
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        line = raw[: e.pos].count(b"\n") + 1
        raise InputError(f"not valid JSON ({str(e).split(':')[0]})", path=path, line=line) from e
    if not isinstance(payload, list) or not all(isinstance(task, dict) for task in payload):
        raise InputError("expected a JSON array of tasks (Label Studio's JSON or JSON_MIN export)", path=path)
    return payload


def _annotator(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("email") or value.get("username") or value.get("id"))
    return f"user:{value}" if isinstance(value, int) else str(value)


def _expect(value: Any, kind: type, what: str, where: str) -> Any:
    """``value`` if it is a ``kind``; else the InputError that a hand-edited or foreign export deserves."""
    if not isinstance(value, kind):
        expected = "a JSON object" if kind is dict else "a JSON array" if kind is list else kind.__name__
        raise InputError(f"{where}: {what} must be {expected}, got {type(value).__name__}")
    return value


def _choices(result: Any, where: str) -> list[str]:
    chosen: list[Any] = []
    for region in _expect(result, list, "'result'", where):
        if _expect(region, dict, "each 'result' region", where).get("type") != "choices":
            continue
        value = _expect(region.get("value", {}), dict, "a region's 'value'", where)
        chosen.extend(_expect(value.get("choices", []), list, "'choices'", where))
    return _checked(chosen, where)


def _checked(chosen: Sequence[Any], where: str) -> list[str]:
    for label in _expect(chosen, list, "'choices'", where):
        if label not in LABELS:
            raise InputError(f"{where}: unknown label {label!r} (expected one of {', '.join(LABELS)})")
    return [label for label in LABELS if label in chosen]


def _min_choices(value: Any, where: str) -> list[str]:
    # JSON_MIN writes one choice as a string and several as {"choices": [...]}.
    if value is None:
        return []
    if isinstance(value, str):
        return _checked([value], where)
    if isinstance(value, dict):
        return _checked(value.get("choices", []), where)
    if isinstance(value, list):
        return _checked(value, where)
    raise InputError(f"{where}: cannot read choices from {type(value).__name__}")


def _decide(votes: list[tuple[str, list[str], bool, str]]) -> tuple[dict[str, int], str, bool]:
    """Final labels from ``(annotator, labels, ground_truth, updated_at)`` votes.

    A ground-truth annotation wins; otherwise each label goes by majority, and
    a tie goes to the most recently updated annotation (reported as ``tie``).
    """
    ground_truth = [labels for _, labels, is_truth, _ in votes if is_truth]
    if ground_truth:
        return {label: int(label in ground_truth[-1]) for label in LABELS}, "ground_truth", False
    if len(votes) == 1:
        return {label: int(label in votes[0][1]) for label in LABELS}, "single", False
    latest = max(votes, key=lambda vote: vote[3])[1]
    final: dict[str, int] = {}
    tie = False
    for label in LABELS:
        yes = sum(label in labels for _, labels, _, _ in votes)
        if yes * 2 == len(votes):
            tie = True
            final[label] = int(label in latest)
        else:
            final[label] = int(yes * 2 > len(votes))
    agree = len({tuple(labels) for _, labels, _, _ in votes}) == 1
    return final, "unanimous" if agree else "tie" if tie else "majority", not agree


def labeled_from_export(payload: list[dict[str, Any]], *, origin: str = "export") -> tuple[list[LabeledSentence], Counter[str]]:
    """Turn an export's tasks into label-set rows, with counts of what was left out."""
    counts: Counter[str] = Counter()
    grouped: dict[str, tuple[dict[str, Any], list[tuple[str, list[str], bool, str]]]] = {}
    texts: dict[str, tuple[str, int]] = {}
    for position, task in enumerate(_expect(payload, list, "the export", origin), start=1):
        counts["tasks"] += 1
        where = f"{origin}: task #{position}"
        where = f"{where} (id {_expect(task, dict, 'a task', where).get('id')})"
        if "data" in task or "annotations" in task:
            data = _expect(task.get("data") or {}, dict, "'data'", where)
            votes = []
            latest_by_annotator: dict[str, tuple[str, list[str], bool, str]] = {}
            for annotation in _expect(task.get("annotations") or [], list, "'annotations'", where):
                if _expect(annotation, dict, "an annotation", where).get("was_cancelled"):
                    counts["skipped_cancelled"] += 1
                    continue
                annotator = _annotator(annotation.get("completed_by"))
                vote = (annotator, _choices(annotation.get("result") or [], where), bool(annotation.get("ground_truth")), str(annotation.get("updated_at") or annotation.get("created_at") or ""))
                previous = latest_by_annotator.get(annotator)
                if previous is None or vote[3] >= previous[3]:
                    latest_by_annotator[annotator] = vote
            votes = list(latest_by_annotator.values())
        else:  # JSON_MIN: the task's data fields at top level, one row per annotation
            data = task
            if "annotator" not in task and "annotation_id" not in task:
                votes = []
            else:
                votes = [(_annotator(task.get("annotator")), _min_choices(task.get("labels"), where), False, str(task.get("updated_at") or ""))]
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            if not votes:  # nothing to learn from it, so nothing to refuse: e.g. a blank task someone imported
                counts["without_annotations"] += 1
                continue
            raise InputError(f"{where}: task has no 'text' in its data")
        key = str(data.get("sentence_id") or f"ls-task-{task.get('id', position)}")
        first_text, first_position = texts.setdefault(key, (text, position))
        if text != first_text:
            raise InputError(f"{where}: sentence_id {key!r} is also on task #{first_position} with a different text")
        if key in grouped:
            grouped[key][1].extend(votes)
        else:
            grouped[key] = (data, votes)
    rows = []
    for key, (data, votes) in grouped.items():
        if not votes:
            counts["without_annotations"] += 1
            continue
        final, decision, disagreed = _decide(votes)
        counts["disagreements"] += disagreed
        counts["ties"] += decision == "tie"
        rows.append(
            LabeledSentence(
                sentence_id=key,
                article_id=str(data.get("article_id") or key),
                text=data["text"],
                lang="zh" if data.get("lang") == "zh" else "en" if data.get("lang") == "en" else detect_lang(data["text"]),
                title=str(data.get("title") or ""),
                source=str(data.get("source") or ""),
                prev=str(data.get("prev") or ""),
                next=str(data.get("next") or ""),
                paragraph=_paragraph(data.get("paragraph"), f"{origin}: sentence {key!r}"),
                annotations=[AnnotatorChoice(annotator=annotator, labels=labels) for annotator, labels, _, _ in votes],
                decision=decision,  # type: ignore[arg-type]
                **final,  # type: ignore[arg-type]
            )
        )
    return rows, counts


def _paragraph(value: Any, where: str) -> int:
    if value is None or value == "":
        return 1
    if isinstance(value, str) and value.isdecimal() and len(value) < 10:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value < 2**31:
        return value
    raise InputError(f"{where}: 'paragraph' must be a whole number from 1, got {type(value).__name__} {str(value)[:20]!r}")


# --- versioned label sets ----------------------------------------------------------


def _manifest(labels_dir: Path) -> dict[str, Any]:
    path = labels_dir / MANIFEST
    if not path.exists():
        return {"sets": {}}
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path}: cannot read the label-set manifest ({e})") from e
    _check_manifest(manifest, path)
    return manifest


def _check_manifest(manifest: Any, path: Path) -> None:
    # A hand-edited manifest must not crash us or point outside labels/ ("file": "../../x").
    sets = manifest.get("sets") if isinstance(manifest, dict) else None
    if not isinstance(sets, dict):
        raise DatasetError(f"{path}: not a label-set manifest (expected {{\"sets\": {{...}}}})")
    for name, versions in sets.items():
        for entry in versions if isinstance(versions, list) else [None]:
            if not (
                isinstance(entry, dict)
                and isinstance(entry.get("file"), str)
                and _VERSIONED_FILE.match(entry["file"])
                and Path(entry["file"]).name == entry["file"]
                and isinstance(entry.get("version"), int)
                and isinstance(entry.get("sha256"), str)
                and isinstance(entry.get("created"), str)
            ):
                raise DatasetError(f"{path}: set {name!r} has a malformed entry; expected version, file (NAME-vN.jsonl in this folder), sha256, created")


def rows_sha256(rows: Iterable[LabeledSentence]) -> str:
    """Content hash of a label set: same sentences, labels and context, same hash.

    The neighbouring sentences count only where a row has them, so sets written
    before rows carried context keep the hash their manifest records.
    """
    digest = hashlib.sha256()
    for row in sorted(rows, key=lambda r: r.sentence_id):
        record: dict[str, Any] = {"id": row.sentence_id, "text": row.text, "labels": row.labels}
        if row.prev or row.next:
            record["context"] = [row.prev, row.next]
        digest.update(dumps_line(record))
    return digest.hexdigest()


def write_label_set(rows: Sequence[LabeledSentence], *, labels_dir: Path, name: str, origin: str) -> tuple[Path | None, int]:
    """Write ``rows`` as the next version of set ``name``; no new file when nothing changed."""
    if not _NAME.match(name):
        raise InputError(f"label-set name {name!r} must be letters, digits, '_' or '.'")
    labels_dir = Path(labels_dir)
    manifest = _manifest(labels_dir)
    versions = manifest["sets"].setdefault(name, [])
    sha = rows_sha256(rows)
    if versions and versions[-1]["sha256"] == sha:
        return None, int(versions[-1]["version"])
    version = int(versions[-1]["version"]) + 1 if versions else 1
    path = labels_dir / f"{name}-v{version}.jsonl"
    with atomic_write(path, mode="wb") as handle:
        for row in sorted(rows, key=lambda r: (r.article_id, r.paragraph, r.sentence_id)):
            handle.write(dumps_line(row.model_dump()))
    versions.append(
        {
            "version": version,
            "file": path.name,
            "sha256": sha,
            "rows": len(rows),
            "label_counts": {label: sum(getattr(r, label) for r in rows) for label in LABELS},
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "origin": origin,
        }
    )
    with atomic_write(labels_dir / MANIFEST) as handle:
        handle.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return path, version


def latest_version(labels_dir: Path, name: str) -> Path | None:
    versions = _manifest(Path(labels_dir))["sets"].get(name) or []
    return Path(labels_dir) / versions[-1]["file"] if versions else None


def import_export(payload: list[dict[str, Any]], *, labels_dir: Path, name: str = "studio", origin: str = "export") -> ImportReport:
    """Turn a Label Studio export into the next version of label set ``name``."""
    rows, counts = labeled_from_export(payload, origin=origin)
    previous_path = latest_version(labels_dir, name)
    previous = {row.sentence_id: row for row in read_label_file(previous_path)} if previous_path else {}
    path, version = write_label_set(rows, labels_dir=labels_dir, name=name, origin=origin)
    current = {row.sentence_id: row for row in rows}
    return ImportReport(
        name=name,
        file=str(path) if path else None,
        version=version,
        changed=path is not None,
        tasks=counts["tasks"],
        rows=len(rows),
        skipped_cancelled=counts["skipped_cancelled"],
        without_annotations=counts["without_annotations"],
        disagreements=counts["disagreements"],
        ties=counts["ties"],
        new=len(current.keys() - previous.keys()),
        removed=len(previous.keys() - current.keys()),
        updated=sum(
            1
            for key in current.keys() & previous.keys()
            if current[key].labels != previous[key].labels or current[key].annotations != previous[key].annotations
        ),
    )


def read_label_file(path: Path) -> list[LabeledSentence]:
    """Read one label-set JSONL file, refusing unknown fields, labels and duplicate ids."""
    rows: list[LabeledSentence] = []
    seen: dict[str, int] = {}
    for line, record in read_jsonl(path):
        try:
            row = LabeledSentence.model_validate(record)
        except ValidationError as e:
            error = e.errors()[0]
            field = ".".join(str(part) for part in error["loc"])
            raise SchemaError(f"{field}: {error['msg']}", path=path, line=line) from e
        if row.sentence_id in seen:
            raise SchemaError(f"duplicate sentence_id {row.sentence_id!r} (first on line {seen[row.sentence_id]})", path=path, line=line)
        seen[row.sentence_id] = line
        rows.append(row)
    return rows


def label_set_files(labels_dir: Path) -> list[Path]:
    """The newest version of every set in ``labels_dir``, oldest set first."""
    labels_dir = Path(labels_dir)
    sets = _manifest(labels_dir)["sets"]
    if sets:
        newest = [versions[-1] for versions in sets.values() if versions]
        return [labels_dir / entry["file"] for entry in sorted(newest, key=lambda entry: entry["created"])]
    by_name: dict[str, tuple[int, Path]] = {}
    for path in sorted(labels_dir.glob("*.jsonl")):
        match = _VERSIONED_FILE.match(path.name)
        name, version = (match["name"], int(match["version"])) if match else (path.stem, 0)
        if name not in by_name or version > by_name[name][0]:
            by_name[name] = (version, path)
    return [path for _, path in sorted(by_name.values(), key=lambda item: item[1].name)]


def load_labels(path: Path) -> list[LabeledSentence]:
    """Rows of a label-set file, or of the newest version of every set in a folder.

    A sentence in several sets keeps the row of the most recently created set.
    """
    return load_labels_by_set(path)[0]


def load_labels_by_set(path: Path) -> tuple[list[LabeledSentence], list[str]]:
    """:func:`load_labels`, plus the name of the set each row comes from (``starter`` for ``starter-v6.jsonl``)."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or directory", path=path)
    files = label_set_files(path) if path.is_dir() else [path]
    if not files:
        raise DatasetError(f"{path}: no label set found (expected <name>-v<N>.jsonl files)")
    merged: dict[str, tuple[LabeledSentence, str]] = {}
    for file in files:
        match = _VERSIONED_FILE.match(file.name)
        name = match["name"] if match else file.stem
        for row in read_label_file(file):
            merged[row.sentence_id] = (row, name)
    return [row for row, _ in merged.values()], [name for _, name in merged.values()]
