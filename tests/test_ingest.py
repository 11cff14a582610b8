from __future__ import annotations

from pathlib import Path

import pytest

from annotate.errors import InputError, SchemaError
from annotate.ingest import article_from_html, article_from_text, decode, read_articles, sentences_from_records
from annotate.segment import segment

from .conftest import EXAMPLES

CHINESE = "医疗人工智能企业融资额从115亿元降至29.6亿元，投资人普遍转向观望。"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
def test_decode_simplified_chinese(encoding: str) -> None:
    assert decode(CHINESE.encode(encoding)) == CHINESE


def test_decode_big5() -> None:
    traditional = "醫療人工智慧企業融資額從115億元降至29.6億元，投資人普遍轉向觀望。"
    assert decode(traditional.encode("big5")) == traditional


def test_decode_refuses_binary() -> None:
    with pytest.raises(InputError, match="binary file, not text"):
        decode(b"PK\x03\x04\x00\x00binary", name="x.txt")


def test_gbk_example_file_reads_as_chinese() -> None:
    (article,) = read_articles([EXAMPLES / "zh_financing_gbk.txt"])
    with pytest.raises(UnicodeDecodeError):
        (EXAMPLES / "zh_financing_gbk.txt").read_bytes().decode("utf-8")
    assert article.title.startswith("医疗AI企业")
    assert all(s.lang == "zh" for s in segment(article))


def test_text_title_from_first_line_or_heading() -> None:
    assert article_from_text("China limits AI\n\nBody text here.").title == "China limits AI"
    assert article_from_text("# Funding falls\n\nBody.").title == "Funding falls"
    untitled = article_from_text("Just one paragraph that ends with a full stop.")
    assert untitled.title == "" and untitled.text.startswith("Just one")


def test_article_ids_are_stable_and_prefer_explicit_then_url() -> None:
    assert article_from_text("T\n\nBody.").article_id == article_from_text("T\n\nBody.").article_id
    assert article_from_text("T\n\nBody.", explicit_id="42").article_id == "42"
    by_url = article_from_text("T\n\nBody.", url="https://example.org/a")
    assert by_url.article_id.startswith("u") and by_url.article_id != article_from_text("T\n\nOther.", url="https://example.org/b").article_id


def test_html_page_keeps_the_article_and_drops_boilerplate() -> None:
    article = article_from_html((EXAMPLES / "llm_safety_feature.html").read_text(encoding="utf-8"), source="page.html")
    texts = [s.text for s in segment(article)]
    assert article.title.startswith("AI chatbots gave unsafe medical answers")
    assert any("potentially harmful" in text for text in texts)
    page_furniture = ("Share this article", "SUBSCRIBE NOW", "Subscribe now", "Listen to this article", "00:00/00:00", "cookies", "free articles", "unlimited access")
    assert not [text for text in texts if any(item in text for item in page_furniture)]


def test_html_with_only_scripts_is_refused() -> None:
    with pytest.raises(InputError, match="no article text found"):
        article_from_html("<html><script>var a = 1;</script></html>", source="s.html")


def test_jsonl_and_csv_exports(tmp_path: Path) -> None:
    articles = list(read_articles([EXAMPLES / "exports.jsonl", EXAMPLES / "exports.csv"]))
    assert len(articles) == 5
    assert all(a.title and a.url and a.date for a in articles)
    assert articles[0].source.startswith(str(EXAMPLES / "exports.jsonl") + ":")


def test_directory_is_read_recursively(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("Title A\n\nBody A.", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Title B\n\nBody B.", encoding="utf-8")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    assert sorted(a.title for a in read_articles([tmp_path])) == ["Title A", "Title B"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"text": "ok"}\n{"text": 5}\n', "x.jsonl:2: field 'text' must be a string, got int"),
        (b'{"text": "ok"}\n{"title": "no text"}\n', "x.jsonl:2: missing or empty 'text' field"),
        (b'{"text": "ok"}\n{"text": "cut\n', "x.jsonl:2: not valid JSON (unexpected end of data)"),
        (b'["a list"]\n', "x.jsonl:1: expected a JSON object, got list"),
    ],
)
def test_bad_jsonl_rows_name_file_and_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError) as error:
        list(read_articles([path]))
    assert str(error.value) == message.replace("x.jsonl", str(path))


def test_bad_csv(tmp_path: Path) -> None:
    no_text = tmp_path / "a.csv"
    no_text.write_text("id,title\n1,x\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="CSV header has no 'text' column"):
        list(read_articles([no_text]))
    extra = tmp_path / "b.csv"
    extra.write_text('id,text\n1,"fine"\n2,"body",surplus\n', encoding="utf-8")
    with pytest.raises(SchemaError, match=r"b.csv:3: row has 3 fields, header has 2"):
        list(read_articles([extra]))


def test_minimal_sentence_rows_get_the_fields_ingest_would_give() -> None:
    text = "The NMPA approved the software in March."
    [ingested] = segment(article_from_text(text))
    rows = [{"text": text}, {"text": "Other.", "article_id": "art"}, {"text": "Same.", "article_id": "art"}, {"text": "Same.", "article_id": "art"}, {"text": "x", "id": 5, "extra": 1}]
    first, other, same, again, named = sentences_from_records(enumerate(rows, start=1), source="s.jsonl")
    assert first.model_dump() == ingested.model_dump(exclude={"prev", "next", "source"}) | {"prev": "", "next": "", "source": ""}
    assert [(s.article_id, s.index, s.paragraph) for s in (other, same, again)] == [("art", 0, 1), ("art", 1, 1), ("art", 2, 1)]
    assert again.sentence_id == same.sentence_id + "-2" and same.sentence_id.startswith("art-")
    assert named.sentence_id == "5"
