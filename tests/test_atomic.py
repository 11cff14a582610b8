"""Nothing half-written: real processes are killed in the middle of a write.

SIGINT (Ctrl-C) runs the clean-up, so no temporary file is left. SIGKILL
cannot be caught: its ``.NAME.PID.*.tmp`` stays until the next write of the
same file, which removes it (its writer is gone and it is older than the new
process).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

import annotate.train
from annotate._io import atomic_write, write_records
from annotate.classify import load_model
from annotate.cli import cli
from annotate.dataset import read_label_file

from .conftest import ROOT, STARTER

OLD = b'{"old": "content that must survive"}\n'
# Writes a first chunk, says so, then keeps writing until it is stopped.
ENDLESS_WRITER = """
import sys, time
from pathlib import Path
from annotate._io import atomic_write
with atomic_write(Path(sys.argv[1]), mode="wb") as handle:
    handle.write(b"new " * 250_000)
    handle.flush()
    print("writing", flush=True)
    while True:
        handle.write(b"more " * 200_000)
        handle.flush()
        time.sleep(0.01)
"""
ONE_WRITE = """
import sys
from pathlib import Path
from annotate._io import atomic_write
with atomic_write(Path(sys.argv[1])) as handle:
    handle.write("second run\\n")
"""


def temporaries(target: Path) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.*.tmp"))


@pytest.fixture(autouse=True)
def children_take_ctrl_c() -> Iterator[None]:
    """A suite started in the background by a non-interactive shell ignores SIGINT, and children
    inherit an ignored signal (never a handler): Python would then not raise KeyboardInterrupt in them."""
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_writer(target: Path) -> subprocess.Popen[str]:
    writer = subprocess.Popen([sys.executable, "-c", ENDLESS_WRITER, str(target)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    assert writer.stdout is not None
    assert writer.stdout.readline() == "writing\n"
    # Interrupted with some megabytes written, whatever the machine's speed.
    deadline = time.monotonic() + 60
    while not any(leftover.stat().st_size > 3_000_000 for leftover in temporaries(target)):
        assert writer.poll() is None and time.monotonic() < deadline, "the writer stopped before writing 3 MB"
        time.sleep(0.01)
    return writer


def test_sigkill_mid_write_keeps_the_old_file_and_the_next_write_removes_the_leftover(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(OLD)
    writer = start_writer(target)
    (leftover,) = temporaries(target)
    assert leftover.name.startswith(f".out.jsonl.{writer.pid}.") and leftover.stat().st_size > 1_000_000
    writer.send_signal(signal.SIGKILL)
    writer.communicate(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    assert target.read_bytes() == OLD
    assert temporaries(target) == [leftover]

    subprocess.run([sys.executable, "-c", ONE_WRITE, str(target)], check=True, cwd=ROOT, timeout=60)
    assert target.read_text(encoding="utf-8") == "second run\n"
    assert temporaries(target) == []


def test_sigint_mid_write_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(OLD)
    writer = start_writer(target)
    assert len(temporaries(target)) == 1
    writer.send_signal(signal.SIGINT)
    writer.communicate(timeout=30)
    assert writer.returncode != 0
    assert target.read_bytes() == OLD
    assert temporaries(target) == []


@pytest.fixture(scope="module")
def big_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough articles that ``annotate ingest`` writes for several seconds."""
    path = tmp_path_factory.mktemp("big") / "articles.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for number in range(40_000):
            text = f"Hospital {number} bought an AI triage tool. Regulators in region {number % 31} asked for more trials. Investors put {number} million yuan into the maker."
            handle.write(json.dumps({"id": f"a{number}", "title": f"Story {number}", "text": text}) + "\n")
    return path


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_killing_annotate_ingest_mid_write_keeps_the_old_output(tmp_path: Path, big_input: Path, signal_number: int) -> None:
    target = tmp_path / "sentences.jsonl"
    target.write_bytes(OLD)
    process = subprocess.Popen(
        [sys.executable, "-m", "annotate", "ingest", str(big_input), "-o", str(target), "--force", "--quiet"],
        stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while not any(leftover.stat().st_size > 100_000 for leftover in temporaries(target)):
        assert process.poll() is None, "ingest ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert target.read_bytes() == OLD
    assert "Traceback" not in stderr
    if signal_number == signal.SIGINT:
        assert stderr.strip() == "Aborted!"
        assert temporaries(target) == []
    else:
        assert len(temporaries(target)) == 1
        # The next run (a new process) writes the file and removes what the killed one left.
        result = subprocess.run(
            [sys.executable, "-m", "annotate", "ingest", str(ROOT / "examples" / "en_wire_regulation.txt"), "-o", str(target), "--force", "--quiet"],
            capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
        )
        assert result.returncode == 0, result.stderr
        assert target.read_bytes() != OLD and temporaries(target) == []


# --- in-process behaviour of atomic_write -------------------------------------------


def test_an_error_inside_the_block_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "labels.jsonl"
    target.write_bytes(OLD)
    with pytest.raises(ValueError, match="boom"), atomic_write(target, mode="wb") as handle:
        handle.write(b"half")
        raise ValueError("boom")
    assert target.read_bytes() == OLD and temporaries(target) == []


def test_an_error_in_the_records_keeps_the_old_output(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_bytes(OLD)

    def records() -> object:
        yield {"text": "one"}
        raise RuntimeError("input broke")

    with pytest.raises(RuntimeError):
        write_records(target, records())  # type: ignore[arg-type]
    assert target.read_bytes() == OLD and temporaries(target) == []


def test_permissions_are_kept_not_made_private(tmp_path: Path) -> None:
    existing = tmp_path / "shared.jsonl"
    existing.write_bytes(OLD)
    existing.chmod(0o640)
    with atomic_write(existing) as handle:
        handle.write("new\n")
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640
    umask = os.umask(0)
    os.umask(umask)
    fresh = tmp_path / "fresh.jsonl"
    with atomic_write(fresh) as handle:
        handle.write("new\n")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask


def finished_pid() -> int:
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(process.stdout)


@pytest.mark.parametrize("name", ["out.jsonl", "weird [1] *?.jsonl"])
def test_only_stale_leftovers_of_dead_writers_are_removed(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    long_ago = time.time() - 3600
    dead = tmp_path / f".{name}.{finished_pid()}.abc123.tmp"
    alive = tmp_path / f".{name}.{os.getppid()}.def456.tmp"
    young = tmp_path / f".{name}.{finished_pid()}.ghi789.tmp"
    other_file = tmp_path / f".other.jsonl.{finished_pid()}.jkl000.tmp"
    for leftover in (dead, alive, young, other_file):
        leftover.write_text("partial", encoding="utf-8")
    for leftover in (dead, alive, other_file):
        os.utime(leftover, (long_ago, long_ago))
    with atomic_write(target) as handle:
        handle.write("done\n")
    assert not dead.exists()
    assert alive.exists() and young.exists() and other_file.exists()


def test_cli_writes_leave_no_temporaries(tmp_path: Path) -> None:
    out = tmp_path / "sentences.jsonl"
    result = CliRunner().invoke(cli, ["ingest", str(ROOT / "examples"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0 and [p.name for p in tmp_path.iterdir()] == ["sentences.jsonl"]


def test_training_stopped_before_its_card_leaves_the_previous_model_usable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = read_label_file(STARTER)
    folder = tmp_path / "model"
    first = annotate.train.train(rows[:300], model_dir=folder, evaluate=False).card
    real_atomic_write = annotate.train.atomic_write

    @contextmanager
    def stopped_at_the_card(path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
        if Path(path).name == annotate.train.CARD_FILE:
            raise KeyboardInterrupt
        with real_atomic_write(path, **kwargs) as handle:  # type: ignore[arg-type]
            yield handle

    monkeypatch.setattr(annotate.train, "atomic_write", stopped_at_the_card)
    with pytest.raises(KeyboardInterrupt):
        annotate.train.train(rows[300:700], model_dir=folder, evaluate=False)
    assert load_model(folder).card == first

    monkeypatch.setattr(annotate.train, "atomic_write", real_atomic_write)
    second = annotate.train.train(rows[300:700], model_dir=folder, evaluate=False).card
    assert second.model_sha256 != first.model_sha256
    assert [path.name for path in folder.glob("*.skops")] == [second.model_file]
    assert load_model(folder).card == second
