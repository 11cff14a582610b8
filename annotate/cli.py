"""The ``annotate`` command line: a thin layer over the library.

stdout carries data only; progress, summaries and warnings go to stderr.
Exit codes: 0 ok, 2 bad usage or bad input, 1 any other toolkit error.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__
from .classify import BATCH_SIZE, TRANSFORMER_BATCH_SIZE
from .errors import AnnotateError, InputError
from .schemas import Recipe, Sentence

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class CommandError(click.ClickException):
    """One ``Error: ...`` line on stderr with the given exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class; each error needs its own


class AnnotateGroup(click.Group):
    """Turns the library's errors into one-line messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as e:
            raise CommandError(one_line(str(e)), 2) from e
        except AnnotateError as e:
            raise CommandError(one_line(str(e)), 1) from e
        except BrokenPipeError:
            sys.stderr.close()  # a closed pipe (| head) is not an error
            sys.exit(0)


def one_line(message: str) -> str:
    """``message`` with line breaks and other control characters escaped.

    Error messages quote file names and values from the input, which must not
    split the one ``Error:`` line or send escape sequences to the terminal.
    """
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in message)


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
    from .ingest import read_sentences as read

    return read(path)


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
@click.option("--rules", is_flag=True, help="Add the keyword rules' predictions as pre-annotations (model version rules-<hash>).")
@force_option
@quiet_option
def export(sentences: Path, output: Path, model_dir: Path | None, force: bool, quiet: bool, rules: bool = False) -> None:
    """Write sentences as a Label Studio import file (JSON list of tasks).

    SENTENCES is JSONL from 'annotate ingest'. Rows need only a 'text' field: a missing
    article_id, sentence_id ('id' is taken as one), index, paragraph or lang
    is derived as 'annotate ingest' would derive it; other fields are ignored.

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
    if model_dir is not None or rules:
        predictions = predictions_for(rows, model_or_rules(model_dir, rules=rules))
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
@click.option("--fast", is_flag=True, help="Train the fast model: hashed n-grams only, no sentence encoder (same as --encoder-weight 0).")
@click.option("--encoder-weight", type=click.FloatRange(min=0), help=f"Scale of the sentence-encoder block beside the n-grams; 0 = fast model  [default: {Recipe().encoder_weight}]")
@click.option("--context-weight", type=click.FloatRange(min=0), help=f"Scale of the neighbouring sentences' embedding block; 0 = none  [default: {Recipe().context_weight}]")
@click.option("-C", "c", type=click.FloatRange(min=0, min_open=True), help=f"Inverse regularisation strength  [default: {Recipe().c:g}]")
@click.option("--tuned-weight", type=click.FloatRange(0, 1), help=f"Share of the fine-tuned transformer in each probability; 0 = none  [default: {Recipe().tuned_weight}]")
@click.option("--tuned-archive", type=click.Path(path_type=Path, dir_okay=False), help="Tuned-transformer archive to build on (tools/tune_e5.py writes one)  [default: the bundled default model's]")
@click.option("--article-context/--no-article-context", default=None, help="Re-weigh each sentence with its article's scores (the article-context stage)  [default: on]")
@click.option("--set-weight", "set_weights", metavar="NAME=W", multiple=True, help="Sample weight of one label set's rows, e.g. starter=0.3 (repeatable; sets not named weigh 1; the invented starter set weighs 0 unless named).")
@force_option
@click.option("--json", "as_json", is_flag=True, help="Print the model card as JSON on stdout.")
def train(
    labels_path: Path,
    output: Path,
    no_eval: bool,
    fast: bool,
    encoder_weight: float | None,
    context_weight: float | None,
    c: float | None,
    tuned_weight: float | None,
    tuned_archive: Path | None,
    article_context: bool | None,
    set_weights: tuple[str, ...],
    force: bool,
    as_json: bool,
) -> None:
    """Train the classifier on a label set and save it with its model card.

    Decision thresholds are picked per label on grouped out-of-fold
    predictions; the printed precision/recall/F1 come from grouped 5-fold
    cross-validation (sentences of one article never on both sides).

    \b
    Examples:
        annotate train --labels labels/ -o models/mine
        annotate train --labels labels/ -o models/mine-fast --fast
        annotate train --labels labels/ --set-weight starter=0.3 -o models/mine
    """
    from .dataset import load_labels_by_set
    from .train import MIN_STAGE_ARTICLES, sample_weights, train

    if fast and (encoder_weight or context_weight or tuned_weight):
        raise click.UsageError("--fast trains without the encoder and transformer: give --fast or their weights, not both.")
    default = Recipe()
    encoder = 0.0 if fast else encoder_weight if encoder_weight is not None else default.encoder_weight
    context = 0.0 if fast or not encoder else context_weight if context_weight is not None else default.context_weight
    if context_weight and not encoder:
        raise click.UsageError("--context-weight needs the sentence encoder: --encoder-weight must be above 0.")
    tuned = 0.0 if fast else tuned_weight if tuned_weight is not None else default.tuned_weight
    if tuned_archive is not None and not tuned:
        raise click.UsageError("--tuned-archive needs the transformer: --tuned-weight must be above 0.")
    recipe = Recipe(
        **({"c": c} if c is not None else {}), encoder_weight=encoder, context_weight=context, tuned_weight=tuned,
        article_context=default.article_context if article_context is None else article_context,
        set_weights={**default.set_weights, **parse_set_weights(set_weights)},
    )  # fmt: skip
    check_inputs([tuned_archive] if tuned_archive else [])
    check_output(output / "model_card.json", force=force)
    # Loaded first, so a bad label set is one error line, not one after a progress line.
    rows, sets = load_labels_by_set(labels_path)
    left_out = sorted({name for name in sets if recipe.set_weights.get(name, 1.0) == 0})
    note(f"training on {labels_path}" + (f" (sets weighted 0, left out: {', '.join(left_out)}; --set-weight NAME=W trains on them)" if left_out else "") + " ...")
    result = train(rows, model_dir=output, recipe=recipe, sample_weight=sample_weights(sets, recipe), evaluate=not no_eval, tuned_archive=tuned_archive)
    if recipe.article_context and result.card.article_context is None:
        note(f"trained without the article-context stage: it needs sentences of at least {MIN_STAGE_ARTICLES} articles with honest first-stage scores")
    if as_json:
        click.echo(result.card.model_dump_json(indent=2))
        return
    card = result.card
    click.echo(f"model {card.model_id} saved to {output} ({card.training_sentences} training sentences)")
    if card.tuned is not None:
        cross_fitted = f" and {card.tuned.cross_fitted_sentences} it has cross-fitted scores for" if card.tuned.cross_fitted_sentences else ""
        note(f"thresholds and metrics from the {card.tuned.unseen_sentences} training sentences the tuned transformer never saw{cross_fitted}")
    if card.metrics:
        click.echo(f"{'label':<20} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8} {'threshold':>9}")
        for name, row in card.metrics.items():
            threshold = f"{card.thresholds[name]:.2f}" if name in card.thresholds else ""
            support = f"{int(row['support'])}" if "support" in row else ""
            click.echo(f"{name:<20} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['f1']:>6.3f} {support:>8} {threshold:>9}")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--sentences", "sentences_file", type=click.Path(path_type=Path), help="Classify pre-split sentences (JSONL with a 'text' field; other fields pass through).")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Per-sentence results: .jsonl, .csv or .parquet; - for JSONL on stdout. A folder with --engine dask.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]), help="Output format  [default: from the -o suffix, else jsonl]")
@click.option("--digest", "digest_file", type=click.Path(path_type=Path), help="Also write the per-article digests as JSONL (a folder with --engine dask).")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), help="Model folder, or a bundled model by name: default (accurate) or fast (n-grams only, for very large corpora)  [default: default]")
@click.option("--rules", is_flag=True, help="Use the keyword rules in schemas/rules.toml instead of a model.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Processes to classify with  [default: 1; --engine dask: one local worker per core]")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True, help="dask: partitioned run on a Dask cluster.")
@click.option("--scheduler", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: start a local cluster).")
@click.option("--batch-size", type=click.IntRange(min=1), help=f"Sentences per prediction batch  [default: {BATCH_SIZE:,}, or {TRANSFORMER_BATCH_SIZE} with the fine-tuned transformer]")
@force_option
@quiet_option
def classify(
    paths: tuple[Path, ...],
    sentences_file: Path | None,
    output: Path | None,
    fmt: str | None,
    digest_file: Path | None,
    model_dir: Path | None,
    jobs: int | None,
    engine: str,
    scheduler: str | None,
    batch_size: int | None,
    force: bool,
    quiet: bool,
    rules: bool = False,
) -> None:
    """Classify every sentence of the articles in PATHS.

    Without -o, print a digest per article: each label with its count and its
    strongest evidence sentences with "[para. N]" references. Input and output
    are streamed, so memory stays flat whatever the input size.

    \b
    Examples:
        annotate classify examples/
        annotate classify archive/ -o results.jsonl --digest digests.jsonl
        annotate classify --sentences sentences.jsonl -o results.parquet --jobs 2
        annotate classify archive/ --engine dask --scheduler tcp://10.0.0.5:8786 -o results/ --format parquet
    """
    from ._io import format_for, open_records, write_records
    from .classify import render_digest
    from .scale import (
        article_digest,
        by_article,
        classify_articles,
        classify_sentence_records,
        is_small_input,
        iter_articles,
        read_sentence_records,
    )

    if bool(paths) == bool(sentences_file):
        raise click.UsageError("Give article PATHS or --sentences FILE, not both or neither.")
    if sentences_file and digest_file:
        raise click.UsageError("--digest needs article PATHS: pre-split sentences carry no article structure.")
    if scheduler and engine != "dask":
        raise click.UsageError("--scheduler needs --engine dask.")
    check_inputs([*paths, *([sentences_file] if sentences_file else [])])
    check_output(output, force=force)
    check_output(digest_file, force=force)
    if engine == "dask":
        if output is None or str(output) == "-":
            raise click.UsageError("--engine dask writes one file per partition: give -o FOLDER.")
        inputs: tuple[Path, ...] = paths or (sentences_file,) if sentences_file else paths
        model = model_or_rules(model_dir, rules=rules)
        _classify_on_dask(inputs, sentences=bool(sentences_file), output=output, fmt=fmt or "jsonl", digest_dir=digest_file, model=model, scheduler=scheduler, workers=jobs or os.cpu_count() or 1, batch_size=batch_size or model.batch_size, quiet=quiet)
        return
    if sentences_file and output is None:
        output = Path("-")
    if fmt == "parquet" and output is not None and str(output) == "-":
        raise click.UsageError("Parquet cannot be written to stdout: give -o FILE.")
    # A few articles in one process: numpy-only scoring, without seconds of scikit-learn imports.
    model = model_or_rules(model_dir, rules=rules, quick=(jobs or 1) == 1 and is_small_input(paths or ((sentences_file,) if sentences_file else ())))
    batch_size = batch_size or model.batch_size

    if sentences_file:
        records = read_sentence_records(sentences_file)
        results = progress(classify_sentence_records(records, model=model, jobs=jobs or 1, batch_size=batch_size), quiet=quiet, unit=" sentences")
        count = write_records(output, results, fmt=fmt)  # type: ignore[arg-type]
        note(f"{count} sentences classified with {model.card.model_id}", quiet=quiet or str(output) == "-")
        return

    classified = classify_articles(iter_articles(paths), model=model, jobs=jobs or 1, batch_size=batch_size)
    classified = progress(classified, quiet=quiet, unit=" sentences")
    with contextlib.ExitStack() as stack:
        rows = stack.enter_context(open_records(output, fmt=fmt or format_for(output))) if output else None
        digests = stack.enter_context(open_records(digest_file, fmt="jsonl")) if digest_file else None
        # One article at a time: rows stream out, and its digest is made as soon as it is complete.
        for article in by_article(classified):
            if rows is not None:
                rows.write_many(article)
            if rows is None or digests is not None:
                summary = article_digest(article)
                if rows is None:
                    click.echo(render_digest(summary))
                if digests is not None:
                    digests.write(summary.model_dump())
    if rows is not None:
        note(f"{rows.count} sentences classified with {model.card.model_id}", quiet=quiet)


def _classify_on_dask(
    inputs: tuple[Path, ...], *, sentences: bool, output: Path, fmt: str, digest_dir: Path | None, model: Any, scheduler: str | None, workers: int, batch_size: int, quiet: bool
) -> None:
    from .scale import classify_on_dask, plan_partitions

    try:
        import distributed  # noqa: F401
    except ImportError as e:
        raise CommandError("--engine dask needs Dask: pip install 'annotate[scale]'", 1) from e
    partitions = plan_partitions(inputs, kind="sentences" if sentences else "articles")
    note(f"{len(partitions)} partitions on {scheduler or f'a local cluster of {workers} workers'}", quiet=quiet)
    from tqdm import tqdm

    with tqdm(total=len(partitions), unit=" partitions", disable=True if quiet else None, file=sys.stderr, dynamic_ncols=True) as bar:
        results = classify_on_dask(
            partitions, model=model, output_dir=output, fmt=fmt, digest_dir=digest_dir, scheduler=scheduler, workers=workers, batch_size=batch_size, on_done=lambda _: bar.update(1)
        )
    note(f"{sum(r.sentences for r in results)} sentences classified with {model.card.model_id} into {len(results)} parts in {output}", quiet=quiet)


def parse_set_weights(values: Iterable[str]) -> dict[str, float]:
    """``NAME=W`` options as a dict; a malformed one is a usage error."""
    weights: dict[str, float] = {}
    for value in values:
        name, _, weight = value.partition("=")
        try:
            weights[name.strip()] = float(weight)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not NAME=WEIGHT (e.g. starter=0.3)", param_hint="--set-weight") from None
        if not name.strip() or weights[name.strip()] < 0:
            raise click.BadParameter(f"{value!r} needs a set name and a weight of 0 or more", param_hint="--set-weight")
    return weights


# >>> quality commands
def model_or_rules(model_dir: Path | None, *, rules: bool, quick: bool = False) -> Any:
    """The model for --model (default: the shipped one), or the keyword rules for --rules."""
    if not rules:
        from .classify import load_model

        return load_model(model_dir, quick=quick)
    if model_dir is not None:
        raise click.UsageError("Give --model or --rules, not both.")
    from .rules import rules_model

    return rules_model()


@cli.command()
@click.option("--labels", "labels_path", type=click.Path(path_type=Path), default=Path("labels"), show_default=True, help="Label-set file or folder: cross-validated, or (with --test) the learning curve's training data.")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), help="Model to score with --test: a folder, or default / fast  [default: default]")
@click.option("--test", "test_file", type=click.Path(path_type=Path), help="Score the model on this labelled file (label-set JSONL) instead of cross-validating.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("report"), show_default=True, help="Folder for report.md and its PNG plots.")
@force_option
@quiet_option
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON on stdout.")
def evaluate(labels_path: Path, model_dir: Path | None, test_file: Path | None, output: Path, force: bool, quiet: bool, as_json: bool) -> None:
    """Measure the classifier and write report.md with plots.

    Without --test: grouped 5-fold cross-validation of the training recipe on
    the label set (an article's sentences never on both sides of a split), as
    'annotate train' reports it. With --test: the model scored on that
    labelled file with its own thresholds. Both give per-label precision,
    recall, F1, support and Brier score, micro/macro F1, the keyword-rules
    baseline and the annotators' agreement on the same sentences side by
    side, a label co-occurrence table and learning curves (25/50/75/100 % of
    the training articles) with and without the sentence encoder. Plots:
    precision-recall curves with the chosen thresholds, reliability diagrams,
    the learning curve.

    \b
    Examples:
        annotate evaluate -o report/
        annotate evaluate --test tests/fixtures/heldout.jsonl -o report-heldout/
    """
    from .dataset import load_labels
    from .evaluate import REPORT_FILE, check_plotting, cross_validated_evaluation, model_evaluation, write_report
    from .labels import LABELS
    from .rules import load_rules

    if model_dir is not None and test_file is None:
        raise click.UsageError("--model needs --test: cross-validation trains its own models on the label set.")
    check_inputs([labels_path, *([test_file] if test_file else [])])
    check_output(output / REPORT_FILE, force=force)
    check_plotting()
    rows = load_labels(labels_path)
    rules = load_rules()
    if test_file is None:
        note(f"cross-validating on {len(rows)} sentences from {labels_path}, learning curve included ...", quiet=quiet)
        evaluation = cross_validated_evaluation(rows, rules=rules, source=f"grouped 5-fold cross-validation on {labels_path}")
    else:
        from .classify import load_model

        test_rows = load_labels(test_file)
        if not test_rows:
            raise InputError("no labelled sentences", path=test_file)
        model = load_model(model_dir)
        note(f"scoring {model.card.model_id} on {len(test_rows)} sentences; learning curve trained on {labels_path} ...", quiet=quiet)
        evaluation = model_evaluation(test_rows, model=model, rules=rules, training_rows=rows, source=str(test_file))
    files = write_report(evaluation, output)
    if as_json:
        click.echo(json.dumps(evaluation.summary(), indent=2, ensure_ascii=False))
    else:
        metrics = evaluation.metrics
        click.echo(f"{'label':<20} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8} {'threshold':>9} {'brier':>6}")
        for label, threshold in zip(LABELS, evaluation.thresholds, strict=True):
            row = metrics[label]
            click.echo(f"{label:<20} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['f1']:>6.3f} {int(row['support']):>8} {threshold:>9.2f} {row['brier']:>6.3f}")
        for average in ("micro", "macro"):
            row = metrics[average]
            click.echo(f"{average:<20} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['f1']:>6.3f}")
        click.echo("\nF1 side by side " + " ".join(f"{label:>18}" for label in LABELS) + f"{'macro':>7}")
        for name, table in (("model", evaluation.metrics), ("keywords", evaluation.baseline)):
            click.echo(f"{name:<11} " + " ".join(f"{table[label]['f1']:>18.3f}" for label in LABELS) + f" {table['macro']['f1']:>6.3f}")
        if evaluation.annotator_f1:
            human = [evaluation.annotator_f1[label] for label in LABELS]
            cells = " ".join(f"{'n/a':>18}" if f1 is None else f"{f1:>18.3f}" for f1 in human)
            macro = "n/a" if None in human else f"{sum(f1 for f1 in human if f1 is not None) / len(human):.3f}"
            click.echo(f"{'annotators':<11} {cells} {macro:>6}   ({evaluation.annotator_sentences} sentences, one annotator against another)")
        click.echo(f"keyword baseline: {evaluation.baseline_id}")
        if evaluation.learning_curve:
            curve = ", ".join(f"{p.fraction:.0%} {p.macro_f1:.3f}" for p in evaluation.learning_curve)
            click.echo(f"learning curve (macro-F1): {curve}")
        if evaluation.other_curve:
            curve = ", ".join(f"{p.fraction:.0%} {p.macro_f1:.3f}" for p in evaluation.other_curve)
            click.echo(f"learning curve, {evaluation.other_curve_id}: {curve}")
    note(f"report written to {files[-1]} with {len(files) - 1} plots", quiet=quiet)


@cli.command()
@click.argument("sentences_file", metavar="SENTENCES.jsonl", type=click.Path(path_type=Path))
@click.option("-n", "count", type=click.IntRange(min=1), required=True, help="How many sentences to pick.")
@click.option("--strategy", type=click.Choice(["uncertainty", "diverse"]), default="uncertainty", show_default=True, help="uncertainty: closest to a decision threshold; diverse: uncertain and unlike each other.")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), help="Model folder, or a bundled model by name: default (accurate) or fast (n-grams only, for very large corpora)  [default: default]")
@click.option("--labels", "labels_path", type=click.Path(path_type=Path), help="Skip sentences already in these label sets  [default: labels/ when it has any]")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write the sentences here instead of stdout.")
@force_option
@quiet_option
def select(sentences_file: Path, count: int, strategy: str, model_dir: Path | None, labels_path: Path | None, output: Path | None, force: bool, quiet: bool) -> None:
    """Pick the N sentences most worth annotating next (active learning).

    SENTENCES.jsonl comes from 'annotate ingest'. Rows need only a 'text' field: a missing
    article_id, sentence_id ('id' is taken as one), index, paragraph or lang
    is derived as 'annotate ingest' would derive it; other fields are ignored.

    Sentences already labelled
    (same sentence_id in the label sets) and repeated texts are skipped. The
    output is sentences JSONL, most useful first, for 'annotate studio push'.

    \b
    Example:
        annotate select sentences.jsonl -n 200 --strategy diverse -o next.jsonl
        annotate studio push next.jsonl --project "Health AI news" --model models/default
    """
    from ._io import write_records
    from .active import select as select_sentences
    from .classify import load_model
    from .dataset import label_set_files, load_labels

    check_inputs([sentences_file, *([labels_path] if labels_path else [])])
    check_output(output, force=force)
    if labels_path is None and Path("labels").is_dir() and label_set_files(Path("labels")):
        labels_path = Path("labels")
    labelled = {row.sentence_id for row in load_labels(labels_path)} if labels_path else set()
    selection = select_sentences(read_sentences(sentences_file), model=load_model(model_dir), n=count, strategy=strategy, skip_ids=labelled)
    if selection.seen == 0:
        raise InputError("no sentences in the file", path=sentences_file)
    write_records(output or "-", (candidate.sentence.model_dump() for candidate in selection.chosen), fmt="jsonl")
    spread = f"; uncertainty {max(c.uncertainty for c in selection.chosen):.2f} to {min(c.uncertainty for c in selection.chosen):.2f}" if selection.chosen else ""
    note(
        f"selected {len(selection.chosen)} of {selection.seen} sentences by {strategy} "
        f"({selection.skipped_labelled} already labelled, {selection.skipped_duplicates} repeats skipped){spread}",
        quiet=quiet,
    )


@cli.command()
@click.option("--labels", "labels_path", type=click.Path(path_type=Path), default=Path("labels"), show_default=True, help="A label-set file or folder.")
@click.option("-n", "count", type=click.IntRange(min=1), default=20, show_default=True, help="How many likely-wrong sentences to list (and write with -o).")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write them as a review batch (sentences JSONL) for 'annotate studio push'.")
@force_option
@click.option("--json", "as_json", is_flag=True, help="Print the review as JSON on stdout.")
def review(labels_path: Path, count: int, output: Path | None, force: bool, as_json: bool) -> None:
    """Check label quality: annotator agreement and likely-wrong labels.

    Agreement: Krippendorff's alpha per label over sentences seen by two or
    more annotators, the annotators' F1 against each other per label (the
    human reference for the model's F1), and Cohen's kappa per label for
    each annotator pair.
    Likely-wrong labels: sentences whose label a model that never saw their
    article confidently contradicts (grouped out-of-fold predictions,
    confident-learning thresholds), most suspicious first.

    \b
    Example:
        annotate review -n 30 -o review.jsonl
        annotate studio push review.jsonl --project "Health AI news: review"
    """
    from dataclasses import asdict

    from ._io import write_records
    from .dataset import load_labels
    from .labels import LABELS
    from .review import agreement, likely_label_errors, review_batch

    check_inputs([labels_path])
    check_output(output, force=force)
    rows = load_labels(labels_path)
    agreed = agreement(rows)
    suspects = likely_label_errors(rows)
    shown = suspects[:count]
    if output is not None:
        write_records(output, (s.model_dump() for s in review_batch(shown, rows)), fmt="jsonl")
    if as_json:
        report = {
            "sentences": len(rows),
            "agreement": asdict(agreed),
            "flagged": len(suspects),
            "suspects": [
                {"sentence_id": s.row.sentence_id, "text": s.row.text, "labels": s.row.labels, "margin": s.margin, "issues": [asdict(i) for i in s.issues]}
                for s in shown
            ],
        }
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        def number(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        if agreed.sentences:
            click.echo(f"agreement over {agreed.sentences} sentences labelled by two or more of: {', '.join(agreed.annotators)}")
            click.echo("Krippendorff's alpha: " + ", ".join(f"{a.label} {number(a.alpha)}" for a in agreed.labels))
            click.echo("annotator pairwise F1: " + ", ".join(f"{a.label} {number(a.pairwise_f1)}" for a in agreed.labels))
            for pair in agreed.pairs:
                kappas = ", ".join(f"{label} {number(pair.kappa[label])}" for label in LABELS)
                click.echo(f"Cohen's kappa {pair.first} / {pair.second} ({pair.sentences} sentences): {kappas}")
        else:
            click.echo("agreement: no sentence was labelled by two or more annotators")
        click.echo(f"likely wrong labels: {len(suspects)} of {len(rows)} sentences flagged; the {len(shown)} most likely:")
        for s in shown:
            issues = "; ".join(f"{i.label}: labelled {i.given}, model {i.probability:.2f}" for i in s.issues)
            click.echo(f"  {s.margin:.2f}  {s.row.sentence_id}  {issues}\n        {s.row.text}")
    if output is not None:
        note(f"{len(shown)} sentences written to {output} for review")
# <<< quality commands


# >>> studio commands
MIN_PASSWORD_LENGTH = 12


def studio_options(function: F) -> F:
    """--url, --api-key (both from the environment) and --project."""
    function = click.option("--project", required=True, help="Title of the Label Studio project.")(function)
    function = click.option(
        "--api-key", envvar="LABEL_STUDIO_API_KEY", show_envvar=True, metavar="KEY",
        help="Legacy token or Personal Access Token (never printed or saved).",
    )(function)  # fmt: skip
    function = click.option("--url", envvar="LABEL_STUDIO_URL", show_envvar=True, help="Label Studio's address, e.g. http://localhost:8080.")(function)
    return function


def studio_connect(url: str | None, api_key: str | None) -> Any:
    from .studio import connect

    if not url:
        raise InputError("LABEL_STUDIO_URL is not set; export it or pass --url")
    if not api_key:
        raise InputError("LABEL_STUDIO_API_KEY is not set; export it or pass --api-key")
    return connect(url, api_key)


@cli.group()
def studio() -> None:
    """Drive a running Label Studio: push sentences, pull annotations, see progress."""


@studio.command("push")
@click.argument("sentences", type=click.Path(path_type=Path))
@studio_options
@click.option("--model", "model_dir", type=click.Path(path_type=Path), help="Pre-annotate new tasks (and tasks lacking this model's version) with this model.")
@click.option("--rules", is_flag=True, help="Pre-annotate with the keyword rules (schemas/rules.toml) instead of a model.")
@click.option("--batch-size", type=click.IntRange(min=1), default=500, show_default=True, help="Tasks per import request.")
@click.option("--update-config", is_flag=True, help="Replace a different labelling config with schemas/label_config.xml (annotations are kept).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@quiet_option
def studio_push(
    sentences: Path, url: str | None, api_key: str | None, project: str, model_dir: Path | None, rules: bool, batch_size: int, update_config: bool, as_json: bool, quiet: bool
) -> None:
    """Import SENTENCES (JSONL from 'annotate ingest') as tasks of a project.

    Rows need only a 'text' field: a missing
    article_id, sentence_id ('id' is taken as one), index, paragraph or lang
    is derived as 'annotate ingest' would derive it; other fields are ignored.

    Creates the project (labelling config from schemas/label_config.xml) or
    reuses it. Sentences already in the project (same sentence_id) are
    skipped, so re-running after an interruption, or pushing an overlapping
    file, never duplicates a task. With --model, tasks carry the model's
    labels as pre-annotations and the project shows that model's version.

    \b
    Example:
        annotate studio push sentences.jsonl --project "Health AI news" --model models/default
    """
    from tqdm import tqdm

    from .studio import push

    check_inputs([sentences])
    rows = list(read_sentences(sentences))
    predictor, version = None, None
    if model_dir is not None or rules:
        model = model_or_rules(model_dir, rules=rules)
        predictor, version = model.predict_sentences, model.card.model_id
    total = len({row.sentence_id for row in rows})
    with studio_connect(url, api_key) as client, tqdm(total=total, unit=" sentences", disable=True if quiet else None, file=sys.stderr, dynamic_ncols=True) as bar:
        report = push(client, rows, project=project, predictor=predictor, model_version=version, batch_size=batch_size, update_config=update_config, progress=bar.update)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    state = "created" if report.created_project else "config updated" if report.config_updated else "existing"
    click.echo(
        f"project {report.project!r} (id {report.project_id}, {state}): {report.tasks_created} tasks created, "
        f"{report.tasks_skipped_existing} already there ({report.tasks_before + report.tasks_created} tasks now)"
    )
    if report.model_version:
        click.echo(f"{report.predictions_created} predictions of model {report.model_version} added; it is the project's model version")


@studio.command("pull")
@studio_options
@click.option("-o", "--labels-dir", type=click.Path(path_type=Path), default=Path("labels"), show_default=True, help="Folder of the label sets; raw exports go to its raw/.")
@click.option("--name", default="studio", show_default=True, help="Label-set name: files are NAME-vN.jsonl.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def studio_pull(url: str | None, api_key: str | None, project: str, labels_dir: Path, name: str, as_json: bool) -> None:
    """Export a project's annotations into the next version of a label set.

    Uses Label Studio's export API, keeps the raw export in LABELS_DIR/raw/
    (timestamped), writes the label set exactly as 'annotate labels import'
    does, and reports what changed since the last pull. An export with fewer
    annotations than the last one is reported as a warning; both are kept.

    \b
    Example:
        annotate studio pull --project "Health AI news" -o labels/
    """
    from .studio import pull

    with studio_connect(url, api_key) as client:
        report = pull(client, project=project, labels_dir=labels_dir, name=name)
    if report.warning:
        click.echo(f"Warning: {report.warning}", err=True)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    result = report.label_set
    where = result.file or f"unchanged, still version {result.version}"
    kept = report.snapshot if report.snapshot_written else f"{report.snapshot} (unchanged)"
    click.echo(
        f"{result.rows} labelled sentences from {result.tasks} tasks ({report.annotations} annotations) -> {where}\n"
        f"raw export: {kept}\n"
        f"left out: {result.without_annotations} tasks without annotations, {result.skipped_cancelled} cancelled annotations\n"
        f"disagreements: {result.disagreements} (ties: {result.ties})\n"
        f"since last version: {result.new} new, {result.updated} updated, {result.removed} removed"
    )


@studio.command("status")
@studio_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON on stdout.")
def studio_status(url: str | None, api_key: str | None, project: str, as_json: bool) -> None:
    """How far the annotators are: tasks, annotated, skipped, per label and annotator, predictions.

    \b
    Example:
        annotate studio status --project "Health AI news" --json
    """
    from .studio import status

    with studio_connect(url, api_key) as client:
        report = status(client, project=project)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    click.echo(f"project {report.project!r} (id {report.project_id}), model version: {report.model_version or '-'}")
    click.echo(f"tasks: {report.tasks}, annotated: {report.annotated}, skipped: {report.skipped}, annotations: {report.annotations}")
    for title, counts in (("per label", report.per_label), ("per annotator", report.per_annotator), ("predictions per model version", report.predictions)):
        click.echo(f"{title}:" + ("" if counts else " none"))
        for key, count in counts.items():
            click.echo(f"  {key:<40} {count:>7}")
    click.echo("ML backends:" + ("" if report.backends else " none"))
    for backend in report.backends:
        click.echo(f"  {backend_line(backend)}")


def backend_line(backend: Any) -> str:
    health = "up" if backend.up else "down" if backend.state == "Disconnected" else "error"
    line = f"{backend.url}: {health} ({backend.state}), model version {backend.model_version or '-'}"
    return f"{line}: {backend.error}" if backend.error and not backend.up else line


def backend_auth(user: str, no_auth: bool) -> tuple[str, str] | None:
    """(user, password) from ANNOTATE_BACKEND_PASSWORD, or None with --no-auth."""
    if no_auth:
        return None
    password = os.environ.get("ANNOTATE_BACKEND_PASSWORD", "")
    if not password:
        raise InputError("ANNOTATE_BACKEND_PASSWORD is not set; export the backend's password (or pass --no-auth for a backend on a loopback address)")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"ANNOTATE_BACKEND_PASSWORD must have at least {MIN_PASSWORD_LENGTH} characters")
    if not user or ":" in user:
        raise InputError(f"backend user {user!r} must be non-empty and without ':'")
    return user, password


def backend_user_option(function: F) -> F:
    function = click.option("--no-auth", is_flag=True, help="No HTTP basic auth (only for a backend on a loopback address).")(function)
    return click.option(
        "--backend-user", "user", envvar="ANNOTATE_BACKEND_USER", show_envvar=True, default="label-studio", show_default=True,
        help="Basic-auth user of the backend; its password comes from ANNOTATE_BACKEND_PASSWORD.",
    )(function)  # fmt: skip


@studio.command("connect")
@studio_options
@click.option("--backend", "backend_url", required=True, metavar="URL", help="The backend's address as Label Studio reaches it, e.g. http://127.0.0.1:9090.")
@backend_user_option
@click.option("--update-config", is_flag=True, help="Replace a different labelling config with schemas/label_config.xml (annotations are kept).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def studio_connect_backend(url: str | None, api_key: str | None, project: str, backend_url: str, user: str, no_auth: bool, update_config: bool, as_json: bool) -> None:
    """Connect a running 'annotate serve' backend to a project, so annotators get its predictions.

    Registers the backend (with its basic-auth credentials), titles it with
    the model version it serves and makes that the project's model version,
    turns on predictions for tasks as they are opened, and points the
    annotation webhook (with the same credentials) at the backend. Creates
    the project if needed, with the label guide as its instructions. A
    second run changes nothing.

    \b
    Example:
        export ANNOTATE_BACKEND_PASSWORD=...   # the one 'annotate serve' uses
        annotate studio connect --project "Health AI news" --backend http://127.0.0.1:9090
    """
    from .studio import connect_backend

    auth = backend_auth(user, no_auth)
    with studio_connect(url, api_key) as client:
        report = connect_backend(client, project=project, backend_url=backend_url, auth=auth, update_config=update_config)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    click.echo(f"project {report.project!r} (id {report.project_id}): ML backend {backend_line(report.backend)}")
    click.echo("changed: " + (", ".join(report.changed) if report.changed else "nothing, all was in place"))


# <<< studio commands


# >>> serve command
def is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@cli.command()
@click.option("--model", "model_dir", type=click.Path(path_type=Path), help="Model to serve until a retrained one exists [default: the shipped model].")
@click.option("--labels", "labels_dir", type=click.Path(path_type=Path), default=Path("labels"), show_default=True, help="Label-set folder: annotations are pulled into it and training reads it.")
@click.option("--versions", "versions_dir", type=click.Path(path_type=Path), default=Path("models/served"), show_default=True, help="Where retrained versions go; VERSIONS/current names the one served.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=9090, show_default=True, help="Port to listen on.")
@backend_user_option
@click.option("--retrain-after", type=click.IntRange(min=0), default=20, show_default=True, help="Retrain once this many new annotations have arrived (0: never).")
@click.option("--debounce", type=click.FloatRange(min=0), default=10.0, show_default=True, help="Seconds without annotations before a due retraining starts.")
@click.option("--max-body-mb", type=click.FloatRange(min=0.01), default=32.0, show_default=True, help="Refuse request bodies larger than this (HTTP 413).")
@click.option("--studio-url", envvar="LABEL_STUDIO_URL", show_envvar=True, help="Label Studio's address, to read annotations for retraining (its key: LABEL_STUDIO_API_KEY).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True, help="How much to log on stderr.")
def serve(
    model_dir: Path | None, labels_dir: Path, versions_dir: Path, host: str, port: int, user: str, no_auth: bool,
    retrain_after: int, debounce: float, max_body_mb: float, studio_url: str | None, log_level: str,
) -> None:  # fmt: skip
    """Run a Label Studio ML backend: predictions as tasks are opened, retraining as annotations arrive.

    Speaks Label Studio's ML backend protocol (/health, /setup, /predict,
    /webhook) with HTTP basic auth (user --backend-user, password from
    ANNOTATE_BACKEND_PASSWORD). Once --retrain-after new annotations have
    arrived, it pulls the project into --labels, trains a new version in
    --versions in a separate process and switches to it; predictions keep
    coming from the current model meanwhile. Connect it to a project with
    'annotate studio connect'.

    \b
    Example:
        export ANNOTATE_BACKEND_PASSWORD=... LABEL_STUDIO_URL=http://127.0.0.1:8080 LABEL_STUDIO_API_KEY=...
        annotate serve --model models/default --port 9090
    """
    import logging

    import uvicorn

    from .classify import DEFAULT_MODEL_DIR, load_model
    from .serve import create_app, current_model_dir

    if no_auth and not is_loopback(host):
        raise InputError(f"--no-auth is only allowed on a loopback address (127.0.0.1, ::1, localhost), not {host}")
    auth = backend_auth(user, no_auth)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    start = current_model_dir(model_dir or DEFAULT_MODEL_DIR, versions_dir)
    app = create_app(
        load_model(start),
        auth=auth,
        labels_dir=labels_dir,
        versions_dir=versions_dir,
        studio_url=studio_url,
        studio_key=os.environ.get("LABEL_STUDIO_API_KEY") or None,
        retrain_after=retrain_after,
        debounce=debounce,
        max_body=int(max_body_mb * (1 << 20)),
    )
    note(f"annotate serve: model {app.state.backend.model.card.model_id} from {start} on http://{host}:{port} ({'basic auth' if auth else 'no auth'})")
    uvicorn.run(app, host=host, port=port, log_config=None, log_level=log_level, timeout_graceful_shutdown=10)
# <<< serve command
