"""Models are code: a model folder from elsewhere is refused unless it is exactly our kind of model.

Each hostile file here is first shown to be live (loading it without our
checks runs code or builds foreign objects), then shown to be refused by
``load_model`` with a one-line reason, with the code never run.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from click.testing import CliRunner

from annotate import classify
from annotate.classify import DEFAULT_MODEL_DIR, load_model
from annotate.cli import cli
from annotate.errors import ModelError
from annotate.labels import LABELS
from annotate.schemas import Recipe
from annotate.train import TRUSTED_TYPES, build_ngrams, fit_model

from .conftest import EXAMPLES, ROOT


class Exploit:
    """An object whose restoring writes a marker file: what a hostile model would do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __setstate__(self, state: dict[str, Any]) -> None:
        Path(state["marker"]).write_text("code ran", encoding="utf-8")

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        # What pickle and joblib run on load.
        return exec, (f"__import__('pathlib').Path({self.marker!r}).write_text('code ran')",)


def model_folder(folder: Path, model_bytes: bytes, **card_changes: Any) -> Path:
    """A model folder holding ``model_bytes`` with the default model's card, its SHA-256 made to match."""
    folder.mkdir(parents=True, exist_ok=True)
    card = json.loads((DEFAULT_MODEL_DIR / "model_card.json").read_text(encoding="utf-8"))
    card.update({"model_file": "model.skops", "model_sha256": hashlib.sha256(model_bytes).hexdigest(), **card_changes})
    (folder / "model.skops").write_bytes(model_bytes)
    (folder / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    return folder


def default_model_file() -> str:
    return str(json.loads((DEFAULT_MODEL_DIR / "model_card.json").read_text(encoding="utf-8"))["model_file"])


def default_bytes() -> bytes:
    return (DEFAULT_MODEL_DIR / default_model_file()).read_bytes()


def with_schema(model_bytes: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    """``model_bytes`` with its skops schema.json changed by ``edit``; the arrays stay as they are."""
    source = zipfile.ZipFile(io.BytesIO(model_bytes))
    schema = json.loads(source.read("schema.json"))
    edit(schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            data = json.dumps(schema).encode() if entry.filename == "schema.json" else source.read(entry)
            target.writestr(entry.filename, data)
    return out.getvalue()


def hashing_vectorizer_params(schema: dict[str, Any]) -> dict[str, Any]:
    steps = schema["content"]["ngrams"]["content"]["content"]["steps"]["content"]
    words = steps[0]["content"][1]
    assert words["__class__"] == "HashingVectorizer"
    params: dict[str, Any] = words["content"]["content"]
    return params


def exec_preprocessor(schema: dict[str, Any]) -> None:
    """Make the real pipeline call ``exec`` on every sentence before hashing it."""
    hashing_vectorizer_params(schema)["preprocessor"] = {"__class__": "exec", "__module__": "builtins", "__loader__": "TypeNode", "__id__": 1}


def refused(folder: Path, *, quick: bool = False) -> str:
    with pytest.raises(ModelError) as error:
        load_model(folder, quick=quick)
    message = str(error.value)
    assert "\n" not in message
    return message


# --- files that would run code ------------------------------------------------------


@pytest.mark.parametrize("writer", ["pickle", "joblib"])
def test_a_pickle_or_joblib_file_is_refused_without_running_it(tmp_path: Path, writer: str) -> None:
    def payload(marker: Path) -> bytes:
        if writer == "pickle":
            return pickle.dumps(Exploit(marker))
        import joblib

        buffer = io.BytesIO()
        joblib.dump(Exploit(marker), buffer)
        return buffer.getvalue()

    control = tmp_path / "control-marker"
    pickle.loads(payload(control))
    assert control.exists()

    marker = tmp_path / "marker"
    folder = model_folder(tmp_path / "model", payload(marker))
    for quick in (False, True):
        assert refused(folder, quick=quick).endswith("a pickle or joblib file is never loaded")
    assert not marker.exists()


def test_a_skops_file_with_a_class_of_ours_is_refused_without_building_it(tmp_path: Path) -> None:
    control = tmp_path / "control-marker"
    skops.io.loads(skops.io.dumps(Exploit(control)), trusted=[f"{__name__}.Exploit"])
    assert control.exists()

    marker = tmp_path / "marker"
    folder = model_folder(tmp_path / "model", skops.io.dumps(Exploit(marker)))
    assert refused(folder) == f"{folder / 'model.skops'}: model contains types that are not allowed: {__name__}.Exploit; refusing to load it"
    assert not marker.exists()


def test_our_pipeline_with_exec_smuggled_in_is_refused(tmp_path: Path) -> None:
    """The real model, but its vectorizer's preprocessor is ``exec``: each sentence would be run as Python."""
    hostile = with_schema(default_bytes(), exec_preprocessor)
    marker = tmp_path / "marker"
    sentence = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    live = skops.io.loads(hostile, trusted=skops.io.get_untrusted_types(data=hostile))
    with pytest.raises(Exception):  # noqa: B017 - exec returns None, which the vectorizer cannot use
        live["ngrams"].transform([sentence])
    assert marker.exists()
    marker.unlink()

    folder = model_folder(tmp_path / "model", hostile)
    for quick in (False, True):
        assert refused(folder, quick=quick) == f"{folder / 'model.skops'}: model contains types that are not allowed: builtins.exec; refusing to load it"
    assert not marker.exists()


@pytest.mark.parametrize(
    ("make", "names"),
    [
        (lambda: build_ngrams().set_params(words__preprocessor=os.system), "posix.system"),
        (lambda: __import__("sklearn.preprocessing").preprocessing.FunctionTransformer(np.exp), "numpy.exp (FunctionNode), sklearn.preprocessing._function_transformer.FunctionTransformer"),
        (lambda: __import__("functools").partial(print, "x"), "builtins.print, functools.partial (PartialNode)"),
        (lambda: __import__("operator").attrgetter("__class__"), "operator.attrgetter (OperatorFuncNode)"),
        (lambda: __import__("sklearn.ensemble").ensemble.RandomForestClassifier(), "sklearn.ensemble._forest.RandomForestClassifier, sklearn.tree._classes.DecisionTreeClassifier"),
    ],
    ids=["os.system", "function-transformer", "partial", "operator", "other-estimator"],
)
def test_skops_files_with_other_types_are_refused(tmp_path: Path, make: Callable[[], Any], names: str) -> None:
    folder = model_folder(tmp_path / "model", skops.io.dumps(make()))
    assert refused(folder) == f"{folder / 'model.skops'}: model contains types that are not allowed: {names}; refusing to load it"


def test_skops_alone_would_accept_a_foreign_estimator(tmp_path: Path) -> None:
    """Why we walk the schema ourselves: skops trusts every scikit-learn estimator and numpy ufunc by default."""
    from sklearn.preprocessing import FunctionTransformer

    data = skops.io.dumps(FunctionTransformer(np.exp))
    assert skops.io.get_untrusted_types(data=data) == []
    assert "FunctionTransformer" in refused(model_folder(tmp_path / "model", data))


# --- files that are damaged, stale or not ours ----------------------------------------


def test_a_tampered_model_does_not_match_its_card(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    data = bytearray(default_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / default_model_file()).write_bytes(bytes(data))
    for quick in (False, True):
        assert refused(folder, quick=quick) == f"{folder / default_model_file()}: file does not match the SHA-256 in its model card; refusing to load it"


def test_a_hostile_file_with_the_old_card_is_refused_by_its_hash(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    marker = tmp_path / "marker"
    (folder / default_model_file()).write_bytes(pickle.dumps(Exploit(marker)))
    assert "does not match the SHA-256" in refused(folder)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"labels": ["financing", "regulatory_barrier", "safety_risk", "commercialization"]}, "model was trained for labels"),
        ({"labels": [*LABELS, "hype"]}, "model was trained for labels"),
        ({"schema_version": "0"}, "model has schema version 0"),
        ({"thresholds": {"financing": 0.5}}, "the card needs a threshold from 0 to 1 for each of"),
        ({"thresholds": dict.fromkeys(LABELS, 7.0)}, "the card needs a threshold from 0 to 1 for each of"),
    ],
    ids=["label-order", "extra-label", "schema-version", "missing-threshold", "threshold-range"],
)
def test_a_card_for_other_labels_or_schema_is_refused(tmp_path: Path, changes: dict[str, Any], reason: str) -> None:
    folder = model_folder(tmp_path / "model", default_bytes(), **changes)
    assert reason in refused(folder)


def test_a_model_that_gives_other_columns_is_refused(tmp_path: Path) -> None:
    texts = [f"sentence {i} about {'funding' if i % 2 else 'rules'} and {'risk' if i % 3 else 'sales'}" for i in range(30)]
    three_labels = np.array([[i % 2, i % 3 == 0, i % 5 == 0] for i in range(30)], dtype=int)
    folder = model_folder(tmp_path / "model", skops.io.dumps(fit_model(texts, three_labels, recipe=Recipe()).parts()))
    assert refused(folder) == f"{folder / 'model.skops'}: model gives 3 scores per sentence, not 4; retrain it"


def test_missing_card_missing_file_and_unsafe_file_name(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert refused(empty) == f"{empty}: no model card (model_card.json); train one with 'annotate train -o {empty}'"
    no_file = model_folder(tmp_path / "no-file", default_bytes())
    (no_file / "model.skops").unlink()
    assert refused(no_file) == f"{no_file / 'model.skops'}: cannot read the model (No such file or directory)"
    # The card names a file outside its folder: only the name is used, inside the folder.
    outside = model_folder(tmp_path / "outside", default_bytes(), model_file="../../../etc/passwd")
    assert refused(outside) == f"{outside / 'passwd'}: cannot read the model (No such file or directory)"


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],
        lambda data: b"",
        lambda data: b"PK\x03\x04" + os.urandom(2000),
        lambda data: with_schema(data, lambda schema: schema.clear()),
    ],
    ids=["truncated-zip", "empty", "zip-header-then-noise", "empty-schema"],
)
def test_a_corrupt_model_file_is_refused(tmp_path: Path, damage: Callable[[bytes], bytes]) -> None:
    folder = model_folder(tmp_path / "model", damage(default_bytes()))
    assert refused(folder).startswith(f"{folder / 'model.skops'}: ")


def test_a_corrupt_card_is_refused(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "model", default_bytes())
    (folder / "model_card.json").write_text('{"model_id": "x", "labels": ', encoding="utf-8")
    assert refused(folder).startswith(f"{folder / 'model_card.json'}: not a valid model card (")


def test_a_model_that_unpacks_to_too_much_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = model_folder(tmp_path / "model", default_bytes())
    monkeypatch.setattr(classify, "MAX_MODEL_UNPACKED_BYTES", 1 << 20)
    assert refused(folder) == f"{folder / 'model.skops'}: model unpacks to more than 1 MB; refusing it"


# --- our own models load, and stay small ------------------------------------------------


def test_a_freshly_trained_model_holds_only_allowed_types(small_model: Path) -> None:
    model = load_model(small_model)
    assert model.predict_proba(["Investors put 100 million yuan into the start-up."]).shape == (1, len(LABELS))
    card = json.loads((small_model / "model_card.json").read_text(encoding="utf-8"))
    assert card["trusted_types"] == TRUSTED_TYPES


def test_the_default_model_file_is_small() -> None:
    """How quickly it loads is measured in benchmarks/bench_memory.py."""
    size = (DEFAULT_MODEL_DIR / default_model_file()).stat().st_size
    assert size < 50_000_000, f"models/default: {size / 1e6:.1f} MB"


# --- through the command line -------------------------------------------------------------


@pytest.fixture
def bad_models(tmp_path: Path) -> dict[str, Path]:
    return {
        "pickle": model_folder(tmp_path / "pickle", pickle.dumps(Exploit(tmp_path / "marker"))),
        "exec": model_folder(tmp_path / "exec", with_schema(default_bytes(), exec_preprocessor)),
        "labels": model_folder(tmp_path / "labels", default_bytes(), labels=["a", "b"]),
        "truncated": model_folder(tmp_path / "truncated", default_bytes()[:1000]),
        "no-card": tmp_path,
    }


@pytest.mark.parametrize("name", ["pickle", "exec", "labels", "truncated", "no-card"])
@pytest.mark.parametrize("command", ["classify", "export"])
def test_cli_refuses_a_bad_model_with_one_error_line(bad_models: dict[str, Path], tmp_path: Path, name: str, command: str) -> None:
    model = bad_models[name]
    if command == "classify":
        args = ["classify", "--model", str(model), str(EXAMPLES)]
    else:
        sentences = tmp_path / "sentences.jsonl"
        assert CliRunner().invoke(cli, ["ingest", str(EXAMPLES / "en_wire_regulation.txt"), "-o", str(sentences)]).exit_code == 0
        args = ["export", str(sentences), "-o", str(tmp_path / "tasks.json"), "--model", str(model)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(f"Error: {model}")
    assert not (tmp_path / "marker").exists()
    assert not (tmp_path / "tasks.json").exists()


def test_cli_refusal_in_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    folder = model_folder(tmp_path / "model", pickle.dumps(Exploit(marker)))
    result = subprocess.run(
        [sys.executable, "-m", "annotate", "classify", "--model", str(folder), str(EXAMPLES / "en_wire_regulation.txt")],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )
    assert result.returncode == 1
    assert result.stderr == f"Error: {folder / 'model.skops'}: not a skops model file (BadZipFile: File is not a zip file); a pickle or joblib file is never loaded\n"
    assert not marker.exists()
