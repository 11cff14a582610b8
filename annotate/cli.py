"""The ``annotate`` command line: a thin layer over the library.

stdout carries data only; progress, summaries and warnings go to stderr.
Exit codes: 0 ok, 2 bad usage or bad input, 1 any other toolkit error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from . import __version__
from .errors import AnnotateError, InputError, SchemaError
from .schemas import Sentence

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class CommandError(click.ClickException):
    """One ``Error: ...`` line on stderr with the given exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class AnnotateGroup(click.Group):
    """Turns the library's errors into one-line messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as e:
            raise CommandError(str(e), 2) from e
        except AnnotateError as e:
            raise CommandError(str(e), 1) from e
        except BrokenPipeError:
            sys.stderr.close()  # a closed pipe (| head) is not an error
            sys.exit(0)


def quiet_option(function: F) -> F:
    return click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary on stderr.")(function)


def force_option(function: F) -> F:
    return click.option("--force", is_flag=True, help="Overwrite the output if it exists.")(function)


def progress(iterable: Iterable[Any], *, quiet: bool, unit: str, total: int | None = None) -> Iterator[Any]:
    from tqdm import tqdm

    # disable=None turns the bar off when stderr is not a terminal.
    return iter(tqdm(iterable, unit=unit, total=total, disable=True if quiet else None, file=sys.stderr, dynamic_ncols=True))


def note(message: str, *, quiet: bool = False) -> None:
    if not quiet:
        click.echo(message, err=True)


def check_output(path: Path | None, *, force: bool) -> None:
    if path is not None and str(path) != "-" and path.exists() and not force:
        raise InputError(f"{path} exists; pass --force to overwrite it")


def check_inputs(paths: Iterable[Path]) -> None:
    for path in paths:
        if str(path) != "-" and not path.exists():
            raise InputError("no such file or directory", path=path)


def read_sentences(path: Path) -> Iterator[Sentence]:
    from ._io import read_jsonl

    for line, record in read_jsonl(path):
        try:
            yield Sentence.model_validate(record)
        except ValidationError as e:
            error = e.errors()[0]
            raise SchemaError(f"{'.'.join(map(str, error['loc']))}: {error['msg']} (expected a sentence from 'annotate ingest')", path=path, line=line) from e


paths_argument = click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))


@click.group(cls=AnnotateGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="annotate")
def cli() -> None:
    """Tag sentences of health-care AI news as regulatory_barrier, financing,
    safety_risk and commercialization: ingest articles, label them in Label
    Studio, train a classifier, and classify new articles in batch.
    """


@cli.command()
@paths_argument
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write JSONL here instead of stdout.")
@force_option
@quiet_option
def ingest(paths: tuple[Path, ...], output: Path | None, force: bool, quiet: bool) -> None:
    """Split articles into sentences, one JSON object per line.

    PATHS are .txt/.md/.html/.jsonl/.csv files, folders (read recursively)
    or - for stdin. Text may be UTF-8, GBK/GB18030 or Big5.

    \b
    Example:
        annotate ingest examples/ -o sentences.jsonl
    """
    from ._io import write_records
    from .ingest import read_articles
    from .segment import segment_all

    check_inputs(paths)
    check_output(output, force=force)
    sentences = progress(segment_all(read_articles(paths)), quiet=quiet, unit=" sentences")
    count = write_records(output or "-", (s.model_dump() for s in sentences), fmt="jsonl")
    note(f"{count} sentences", quiet=quiet)


@cli.command()
@click.argument("sentences", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The Label Studio import file (JSON).")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), help="Add this model's predictions as pre-annotations.")
@force_option
@quiet_option
def export(sentences: Path, output: Path, model_dir: Path | None, force: bool, quiet: bool) -> None:
    """Write sentences as a Label Studio import file (JSON list of tasks).

    The project's labelling config is schemas/label_config.xml. With --model,
    each task carries the model's labels, score and version as a prediction.

    \b
    Example:
        annotate export sentences.jsonl -o tasks.json --model models/default
    """
    from ._io import atomic_write
    from .studio import build_tasks, predictions_for

    check_inputs([sentences])
    check_output(output, force=force)
    rows = list(read_sentences(sentences))
    predictions = None
    if model_dir is not None:
        from .classify import load_model

        predictions = predictions_for(rows, load_model(model_dir))
    tasks = build_tasks(rows, predictions)
    with atomic_write(output) as handle:
        json.dump(tasks, handle, ensure_ascii=False, indent=1)
    note(f"{len(tasks)} tasks written to {output}", quiet=quiet)


@cli.group()
def labels() -> None:
    """Manage the versioned label sets in labels/."""


@labels.command("import")
@click.argument("export_file", metavar="EXPORT.json", type=click.Path(path_type=Path))
@click.option("--labels-dir", type=click.Path(path_type=Path), default=Path("labels"), show_default=True)
@click.option("--name", default="studio", show_default=True, help="Label-set name: files are NAME-vN.jsonl.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def labels_import(export_file: Path, labels_dir: Path, name: str, as_json: bool) -> None:
    """Turn a Label Studio JSON export into the next version of a label set.

    Annotators' disagreements are settled by majority (a tie goes to the most
    recent annotation and is counted); cancelled annotations and tasks with
    no annotation are left out and counted.

    \b
    Example:
        annotate labels import project-1-at-2026-11-25.json --name studio
    """
    from .dataset import import_export, read_export

    report = import_export(read_export(export_file), labels_dir=labels_dir, name=name, origin=export_file.name)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    where = report.file or f"unchanged, still version {report.version}"
    click.echo(
        f"{report.rows} labelled sentences from {report.tasks} tasks -> {where}\n"
        f"left out: {report.without_annotations} tasks without annotations, {report.skipped_cancelled} cancelled annotations\n"
        f"disagreements: {report.disagreements} (ties: {report.ties})\n"
        f"since last version: {report.new} new, {report.updated} updated, {report.removed} removed"
    )


@cli.command()
@click.option("--labels", "labels_path", type=click.Path(path_type=Path), default=Path("labels"), show_default=True, help="A label-set file or folder.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("models/default"), show_default=True, help="Model folder.")
@click.option("--no-eval", is_flag=True, help="Skip the cross-validated metrics (faster).")
@force_option
@click.option("--json", "as_json", is_flag=True, help="Print the model card as JSON on stdout.")
def train(labels_path: Path, output: Path, no_eval: bool, force: bool, as_json: bool) -> None:
    """Train the classifier on a label set and save it with its model card.

    Decision thresholds are picked per label on grouped out-of-fold
    predictions; the printed precision/recall/F1 come from grouped 5-fold
    cross-validation (sentences of one article never on both sides).

    \b
    Example:
        annotate train --labels labels/ -o models/mine
    """
    from .dataset import load_labels
    from .train import train as train_model

    check_output(output / "model_card.json", force=force)
    rows = load_labels(labels_path)
    note(f"training on {len(rows)} sentences from {labels_path} ...")
    result = train_model(rows, model_dir=output, evaluate=not no_eval)
    if as_json:
        click.echo(result.card.model_dump_json(indent=2))
        return
    card = result.card
    click.echo(f"model {card.model_id} saved to {output}")
    if card.metrics:
        click.echo(f"{'label':<20} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8} {'threshold':>9}")
        for name, row in card.metrics.items():
            threshold = f"{card.thresholds[name]:.2f}" if name in card.thresholds else ""
            support = f"{int(row['support'])}" if "support" in row else ""
            click.echo(f"{name:<20} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['f1']:>6.3f} {support:>8} {threshold:>9}")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--sentences", "sentences_file", type=click.Path(path_type=Path), help="Classify pre-split sentences (JSONL with a 'text' field; other fields pass through).")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Per-sentence results: .jsonl, .csv or .parquet; - for JSONL on stdout.")
@click.option("--digest", "digest_file", type=click.Path(path_type=Path), help="Also write the per-article digests as JSONL.")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), help="Model folder (default: the shipped model).")
@force_option
@quiet_option
def classify(paths: tuple[Path, ...], sentences_file: Path | None, output: Path | None, digest_file: Path | None, model_dir: Path | None, force: bool, quiet: bool) -> None:
    """Classify every sentence of the articles in PATHS.

    Without -o, print a digest per article: each label with its count and its
    strongest evidence sentences with "[para. N]" references.

    \b
    Examples:
        annotate classify examples/
        annotate classify archive/ -o results.jsonl --digest digests.jsonl
        annotate classify --sentences sentences.jsonl -o results.csv
    """
    from ._io import read_jsonl, write_records
    from .classify import classify as classify_sentences
    from .classify import classify_records, digests, load_model, render_digest

    if bool(paths) == bool(sentences_file):
        raise click.UsageError("Give article PATHS or --sentences FILE, not both or neither.")
    check_inputs([*paths, *([sentences_file] if sentences_file else [])])
    check_output(output, force=force)
    check_output(digest_file, force=force)
    if sentences_file and output is None:
        output = Path("-")
    if sentences_file and digest_file:
        raise click.UsageError("--digest needs article PATHS: pre-split sentences carry no article structure.")
    model = load_model(model_dir)

    if sentences_file:
        records = (_checked_text(line, record, sentences_file) for line, record in read_jsonl(sentences_file))
        results = progress(classify_records(records, model=model), quiet=quiet, unit=" sentences")
        count = write_records(output, results)  # type: ignore[arg-type]
        note(f"{count} sentences classified with {model.card.model_id}", quiet=quiet or str(output) == "-")
        return

    from .ingest import read_articles
    from .segment import segment_all

    classified = progress(classify_sentences(segment_all(read_articles(paths)), model=model), quiet=quiet, unit=" sentences")
    if output is None:
        article_digests = list(digests(classified))
        for item in article_digests:
            click.echo(render_digest(item))
        if digest_file:
            write_records(digest_file, (d.model_dump() for d in article_digests), fmt="jsonl")
        return
    collected: list[Any] = []
    rows = (_collect(s, collected if digest_file else None) for s in classified)
    count = write_records(output, rows)
    if digest_file:
        write_records(digest_file, (d.model_dump() for d in digests(collected)), fmt="jsonl")
    note(f"{count} sentences classified with {model.card.model_id}", quiet=quiet)


def _checked_text(line: int, record: dict[str, Any], path: Path) -> dict[str, Any]:
    if not isinstance(record.get("text"), str):
        raise SchemaError("each line needs a 'text' field with a string", path=path, line=line)
    return record


def _collect(sentence: Any, into: list[Any] | None) -> dict[str, Any]:
    if into is not None:
        into.append(sentence)
    return dict(sentence.model_dump())


# >>> studio commands
# <<< studio commands
