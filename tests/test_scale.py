"""Corpus-scale classification: one process, --jobs 2 and Dask give the same output; memory stays flat."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import distributed
import orjson
import pyarrow.parquet
import pytest
from click.testing import CliRunner

from annotate._io import line_ranges, read_jsonl_range
from annotate.classify import load_model
from annotate.cli import cli
from annotate.errors import InputError
from annotate.scale import classify_on_dask, plan_partitions

from .conftest import EXAMPLES, STARTER


@pytest.fixture(scope="module")
def sentences_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples' sentences, repeated under new ids so that there are several thousand."""
    folder = tmp_path_factory.mktemp("sentences")
    result = CliRunner().invoke(cli, ["ingest", str(EXAMPLES), "-o", str(folder / "examples.jsonl"), "-q"])
    assert result.exit_code == 0, result.output
    base = [json.loads(line) for line in (folder / "examples.jsonl").read_text(encoding="utf-8").splitlines()]
    path = folder / "sentences.jsonl"
    with path.open("wb") as handle:
        for copy in range(40):
            for row in base:
                handle.write(
                    orjson.dumps({**row, "article_id": f"{row['article_id']}-{copy}", "sentence_id": f"{row['sentence_id']}-{copy}"})
                    + b"\n"
                )
    return path


@pytest.fixture(scope="module")
def articles_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Article files of every kind (text, HTML, GBK, JSONL and CSV exports) in nested folders."""
    folder = tmp_path_factory.mktemp("articles")
    for copy in range(3):
        target = folder / f"batch{copy}"
        target.mkdir()
        for example in EXAMPLES.iterdir():
            (target / example.name).write_bytes(example.read_bytes())
    return folder


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    """An existing two-worker cluster, used the way a user points at theirs with --scheduler."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def run(*args: str) -> None:
    result = CliRunner().invoke(cli, [*args, "-q"])
    assert result.exit_code == 0, result.output


def parts(folder: Path) -> bytes:
    return b"".join(part.read_bytes() for part in sorted(folder.glob("part-*.jsonl")))


def test_sentences_are_identical_with_one_process_two_jobs_and_dask(sentences_file: Path, dask_scheduler: str, tmp_path: Path) -> None:
    run("classify", "--sentences", str(sentences_file), "-o", str(tmp_path / "one.jsonl"), "--batch-size", "500")
    run("classify", "--sentences", str(sentences_file), "-o", str(tmp_path / "jobs.jsonl"), "--jobs", "2", "--batch-size", "300")
    run("classify", "--sentences", str(sentences_file), "-o", str(tmp_path / "dask"), "--engine", "dask", "--scheduler", dask_scheduler)
    one = (tmp_path / "one.jsonl").read_bytes()
    rows = [json.loads(line) for line in one.splitlines()]
    assert len(rows) == sum(1 for line in sentences_file.read_bytes().splitlines() if line.strip()) > 5000
    assert any(row["labels"] for row in rows) and any(not row["labels"] for row in rows)
    assert (tmp_path / "jobs.jsonl").read_bytes() == one
    assert parts(tmp_path / "dask") == one


def test_articles_and_digests_are_identical_with_one_process_two_jobs_and_dask(
    articles_folder: Path, dask_scheduler: str, tmp_path: Path
) -> None:
    run("classify", str(articles_folder), "-o", str(tmp_path / "one.jsonl"), "--digest", str(tmp_path / "one-digest.jsonl"))
    run("classify", str(articles_folder), "-o", str(tmp_path / "jobs.jsonl"), "--digest", str(tmp_path / "jobs-digest.jsonl"), "-j", "2")
    run(
        "classify",
        str(articles_folder),
        "-o",
        str(tmp_path / "dask"),
        "--digest",
        str(tmp_path / "dask-digest"),
        "--engine",
        "dask",
        "--scheduler",
        dask_scheduler,
    )
    one = (tmp_path / "one.jsonl").read_bytes()
    digests = (tmp_path / "one-digest.jsonl").read_bytes()
    assert len(digests.splitlines()) == 3 * 10  # 5 single-article files and 5 export rows, three times
    assert (tmp_path / "jobs.jsonl").read_bytes() == one
    assert (tmp_path / "jobs-digest.jsonl").read_bytes() == digests
    assert parts(tmp_path / "dask") == one
    assert parts(tmp_path / "dask-digest") == digests


def test_many_small_dask_partitions_concatenate_to_the_one_process_output(
    sentences_file: Path, dask_scheduler: str, tmp_path: Path
) -> None:
    run("classify", "--sentences", str(sentences_file), "-o", str(tmp_path / "one.jsonl"))
    partitions = plan_partitions([sentences_file], kind="sentences", partition_bytes=200_000)
    assert len(partitions) >= 10
    results = classify_on_dask(partitions, model=load_model(), output_dir=tmp_path / "dask", scheduler=dask_scheduler)
    assert [result.number for result in results] == list(range(len(partitions)))
    assert parts(tmp_path / "dask") == (tmp_path / "one.jsonl").read_bytes()


def test_dask_without_scheduler_starts_a_local_cluster_and_writes_parquet(sentences_file: Path, tmp_path: Path) -> None:
    run("classify", "--sentences", str(sentences_file), "-o", str(tmp_path / "one.parquet"))
    run("classify", "--sentences", str(sentences_file), "-o", str(tmp_path / "jobs.parquet"), "-j", "2")
    run("classify", "--sentences", str(sentences_file), "-o", str(tmp_path / "dask"), "--engine", "dask", "-j", "2", "--format", "parquet")
    one = pyarrow.parquet.read_table(tmp_path / "one.parquet").to_pylist()
    assert one[0]["scores"].keys() == {"regulatory_barrier", "financing", "safety_risk", "commercialization"}
    assert pyarrow.parquet.read_table(tmp_path / "jobs.parquet").to_pylist() == one
    assert [part.name for part in (tmp_path / "dask").iterdir()] == ["part-00000.parquet"]
    assert pyarrow.parquet.read_table(tmp_path / "dask" / "part-00000.parquet").to_pylist() == one


def test_dask_output_folder_is_not_overwritten_without_force(sentences_file: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    result = CliRunner().invoke(cli, ["classify", "--sentences", str(sentences_file), "-o", str(tmp_path / "out"), "--engine", "dask"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: {tmp_path / 'out'} exists; pass --force to overwrite it"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --engine dask."),
        (["--engine", "dask"], "--engine dask writes one file per partition: give -o FOLDER."),
        (["--format", "parquet"], "Parquet cannot be written to stdout: give -o FILE."),
    ],
)
def test_option_conflicts_are_usage_errors(sentences_file: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["classify", "--sentences", str(sentences_file), *args])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: {message}"


def test_line_ranges_cover_the_file_with_whole_lines_and_line_numbers(sentences_file: Path) -> None:
    ranges = list(line_ranges(sentences_file, target_bytes=100_000))
    assert ranges[0][0] == 0 and ranges[-1][1] == sentences_file.stat().st_size
    assert all(previous[1] == current[0] for previous, current in itertools.pairwise(ranges))
    numbered = [item for start, end, first in ranges for item in read_jsonl_range(sentences_file, start=start, end=end, first_line=first)]
    lines = sentences_file.read_bytes().splitlines()
    assert [number for number, _ in numbered] == list(range(1, len(lines) + 1))
    assert all(record == json.loads(lines[number - 1]) for number, record in numbered[::97])


def test_a_bad_line_in_a_dask_partition_names_the_file_and_its_real_line(sentences_file: Path, dask_scheduler: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    lines = sentences_file.read_bytes().splitlines(keepends=True)
    lines[4000] = b'{"text": 12}\n'
    broken.write_bytes(b"".join(lines))
    result = CliRunner().invoke(
        cli, ["classify", "--sentences", str(broken), "-o", str(tmp_path / "out"), "--engine", "dask", "--scheduler", dask_scheduler]
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: {broken}:4001: each line needs a 'text' field with a string"


def test_force_removes_the_parts_of_an_earlier_larger_run(sentences_file: Path, dask_scheduler: str, tmp_path: Path) -> None:
    run("classify", "--sentences", str(sentences_file), "-o", str(tmp_path / "one.jsonl"))
    out = tmp_path / "out"
    out.mkdir()
    for number in range(12):  # an earlier run over a bigger input: more partitions than this one has
        (out / f"part-{number:05d}.jsonl").write_bytes(b'{"stale": true}\n')
    (out / "part-00003.parquet").write_bytes(b"stale")
    (out / "notes.txt").write_text("not ours", encoding="utf-8")
    run("classify", "--sentences", str(sentences_file), "-o", str(out), "--engine", "dask", "--scheduler", dask_scheduler, "--force")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "part-00000.jsonl"]
    assert parts(out) == (tmp_path / "one.jsonl").read_bytes()


def test_a_failed_dask_run_leaves_no_parts(sentences_file: Path, dask_scheduler: str, tmp_path: Path) -> None:
    """One bad line in one of many partitions: the parts the others wrote, and the old ones, are all removed."""
    broken = tmp_path / "broken.jsonl"
    lines = sentences_file.read_bytes().splitlines(keepends=True)
    lines[len(lines) // 2] = b'{"text": 12}\n'
    broken.write_bytes(b"".join(lines))
    partitions = plan_partitions([broken], kind="sentences", partition_bytes=200_000)
    assert len(partitions) >= 10
    out, digests = tmp_path / "out", tmp_path / "digests"
    out.mkdir()
    (out / "part-00000.jsonl").write_bytes(b'{"stale": true}\n')
    written: list[int] = []
    with pytest.raises(InputError, match=rf"^{re.escape(str(broken))}:{len(lines) // 2 + 1}: "):
        classify_on_dask(
            partitions, model=load_model(), output_dir=out, digest_dir=digests, scheduler=dask_scheduler, on_done=lambda r: written.append(r.number)
        )
    assert written, "some partitions were written before the failure was seen"
    assert list(out.iterdir()) == [] and list(digests.iterdir()) == []


# ---------------------------------------------------------------- the quick path for a few articles

ROOT = EXAMPLES.parent


def test_murmurhash_matches_scikit_learn() -> None:
    from sklearn.utils import murmurhash3_32 as sklearn_murmurhash

    from annotate._linear import murmurhash3_32

    samples = ["", "a", "ab", "abc", "abcd", "abcde", "regulatory barrier", "医疗人工智能", "naïve café 🚀", "x" * 1001]
    for sample in samples:
        data = sample.encode("utf-8")
        assert murmurhash3_32(data) == sklearn_murmurhash(data, seed=0, positive=False), sample


def test_numpy_scoring_gives_the_scikit_learn_results_on_the_starter_set() -> None:
    import numpy as np

    rows = [json.loads(line) for line in (STARTER).read_text(encoding="utf-8").splitlines()]
    records = [{"text": row["text"]} for row in rows] + [{"text": ""}, {"text": "12 345"}, {"text": "İSTANBUL Straße ﬁnance 融资"}]
    # The linear part is what the quick path replaces; the transformer and the article-context stage are the same on both paths.
    full, quick = (
        dataclasses.replace(model, tuned=None, card=model.card.model_copy(update={"article_context": None}))
        for model in (load_model(), load_model(quick=True))
    )
    assert type(quick.pipeline).__name__ == "LinearPipeline"
    texts = [record["text"] for record in records]
    assert np.abs(quick.predict_proba(texts) - full.predict_proba(texts)).max() < 1e-12
    from annotate.classify import classify_records

    assert list(classify_records(records, model=quick)) == list(classify_records(records, model=full))


def test_numpy_scoring_refuses_any_other_pipeline() -> None:
    import numpy as np
    import skops.io
    from sklearn.linear_model import LogisticRegression

    from annotate._linear import linear_pipeline

    other = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    assert linear_pipeline(skops.io.dumps(other), labels=4) is None
    assert linear_pipeline(b"not a zip file", labels=4) is None
    card = json.loads((ROOT / "models" / "default" / "model_card.json").read_text(encoding="utf-8"))
    assert linear_pipeline((ROOT / "models" / "default" / card["model_file"]).read_bytes(), labels=3) is None


def test_classifying_one_article_imports_neither_scikit_learn_nor_skops(tmp_path: Path) -> None:
    article = EXAMPLES / "en_wire_regulation.txt"
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from annotate.cli import cli\n"
        f"result = CliRunner().invoke(cli, ['classify', {str(article)!r}, '-o', {str(tmp_path / 'quick.jsonl')!r}, '-q'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('sklearn', 'skops', 'scipy')))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"
    from annotate.scale import classify_articles, iter_articles

    full = list(classify_articles(iter_articles([article]), model=load_model()))
    assert (tmp_path / "quick.jsonl").read_bytes() == b"".join(orjson.dumps(record) + b"\n" for record in full)


def test_the_model_check_allows_exactly_the_types_training_trusts() -> None:
    from annotate.classify import TRUSTED_TYPE_NAMES
    from annotate.train import TRUSTED_TYPES

    assert TRUSTED_TYPE_NAMES == set(TRUSTED_TYPES)
