from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from annotate.cli import cli
from annotate.errors import InputError
from annotate.labels import LABELS
from annotate.rules import RULES_PATH, load_rules, rules_model


@pytest.fixture(scope="module")
def rules():
    return load_rules()


def test_shipped_rules_cover_every_label_in_both_languages() -> None:
    import tomllib

    document = tomllib.loads(RULES_PATH.read_text(encoding="utf-8"))
    assert set(document) == set(LABELS)
    for label in LABELS:
        assert document[label]["en"] and document[label]["zh"], label


def test_version_is_a_hash_of_the_file(tmp_path: Path, rules) -> None:
    assert re.fullmatch(r"rules-[0-9a-f]{12}", rules.version)
    edited = tmp_path / "rules.toml"
    edited.write_text(RULES_PATH.read_text(encoding="utf-8") + "\n# a comment changes the version\n", encoding="utf-8")
    assert load_rules(edited).version != rules.version
    assert load_rules(RULES_PATH).version == rules.version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The FDA cleared the software under its 510(k) pathway.", {"regulatory_barrier"}),
        ("Regulators said the tool may only assist doctors, not replace them.", {"regulatory_barrier"}),
        ("The start-up raised $25 million in a Series B round led by two venture firms.", {"financing"}),
        ("The chatbot hallucinated drug doses, putting patients at risk of harm.", {"safety_risk"}),
        ("The company launched the product and signed 40 hospital customers.", {"commercialization"}),
        ("国家药监局批准了该公司的三类医疗器械注册证。", {"regulatory_barrier"}),
        ("公司完成了5亿元B轮融资，由某基金领投。", {"financing"}),
        ("研究发现，大模型给出的用药建议存在错误，可能导致误诊。", {"safety_risk"}),
        ("该产品已在全国200家医院部署上线，销售收入快速增长。", {"commercialization"}),
        ("The weather in Boston was mild on Tuesday.", set()),
        ("他毕业于北京大学医学部。", set()),
    ],
)
def test_rules_tag_clear_sentences(rules, text: str, expected: set[str]) -> None:
    labels, scores = rules.predict([text])[0]
    assert set(labels) == expected
    assert set(scores) == set(LABELS)


def test_score_grows_with_the_number_of_matching_patterns(rules) -> None:
    one = "The agency is a regulator."  # only the 'regulat...' pattern
    assert rules.hits(one)[0] == 1
    many = "The FDA regulator banned the tool and issued guidance on compliance."
    scores = rules.predict_proba([one, many])[:, 0]
    assert scores[0] == pytest.approx(0.5)
    hits = rules.hits(many)[0]
    assert hits >= 3 and scores[1] == pytest.approx(hits / (hits + 1))
    assert rules.matched(one) == {"regulatory_barrier": [p.pattern for p in rules.patterns["regulatory_barrier"] if p.search(one)]}


def test_no_texts_give_an_empty_matrix(rules) -> None:
    assert rules.predict_proba([]).shape == (0, len(LABELS))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[financing\nen = ['x']", "not a valid TOML rules file"),
        ("[money]\nen = ['cash']", "unknown label 'money' (expected one of regulatory_barrier, financing, safety_risk, commercialization)"),
        ("[financing]\nen = ['x']", "no rules for label 'regulatory_barrier'; add a [regulatory_barrier] table with en/zh pattern lists"),
        ("[regulatory_barrier]\nfr = ['loi']", "regulatory_barrier.fr: unknown language (expected en or zh)"),
        ("[regulatory_barrier]\nen = 'FDA'", "regulatory_barrier.en: expected a list of non-empty pattern strings"),
        ("[regulatory_barrier]\nen = ['FDA', '(unclosed']", "regulatory_barrier.en[1]: not a regular expression (missing ), unterminated subpattern at position 0)"),
    ],
)
def test_bad_rules_files_are_refused_with_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as raised:
        load_rules(path)
    assert str(raised.value).startswith(f"{path}: {message}")
    assert "\n" not in str(raised.value)


def test_missing_rules_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the rules"):
        load_rules(tmp_path / "nope.toml")


def test_rules_model_behaves_like_a_model(rules) -> None:
    model = rules_model(rules)
    assert model.card.model_id == rules.version
    assert model.card.labels == list(LABELS)
    texts = ["The start-up raised $25 million in a Series B round.", "Nothing here."]
    np.testing.assert_array_equal(model.predict_proba(texts), rules.predict_proba(texts))
    assert [labels for labels, _ in model.predict(texts)] == [["financing"], []]


def test_classify_with_rules(tmp_path: Path, rules) -> None:
    sentences = tmp_path / "s.jsonl"
    sentences.write_text(
        "\n".join(json.dumps({"text": t}) for t in ["公司完成了5亿元B轮融资。", "The sky is blue."]) + "\n", encoding="utf-8"
    )
    result = CliRunner().invoke(cli, ["classify", "--rules", "--sentences", str(sentences), "-q"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["labels"] for row in rows] == [["financing"], []]


def test_classify_refuses_model_and_rules_together(tmp_path: Path) -> None:
    sentences = tmp_path / "s.jsonl"
    sentences.write_text('{"text": "x"}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["classify", "--rules", "--model", str(tmp_path), "--sentences", str(sentences)])
    assert result.exit_code == 2
    assert "Give --model or --rules, not both." in result.output


def test_export_with_rules_marks_predictions_with_the_rules_version(tmp_path: Path, rules) -> None:
    sentence = {
        "article_id": "a1", "sentence_id": "a1-1", "paragraph": 1, "index": 0, "lang": "en",
        "text": "The FDA cleared the tool, and the start-up raised $10 million.",
    }
    sentences = tmp_path / "s.jsonl"
    sentences.write_text(json.dumps(sentence) + "\n", encoding="utf-8")
    output = tmp_path / "tasks.json"
    result = CliRunner().invoke(cli, ["export", str(sentences), "--rules", "-o", str(output)])
    assert result.exit_code == 0, result.output
    [task] = json.loads(output.read_text(encoding="utf-8"))
    [prediction] = task["predictions"]
    assert prediction["model_version"] == rules.version
    assert prediction["result"][0]["value"]["choices"] == ["regulatory_barrier", "financing"]
