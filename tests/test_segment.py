from __future__ import annotations

import pytest

from annotate.ingest import article_from_text
from annotate.segment import detect_lang, is_furniture, paragraphs, segment, split_sentences


@pytest.mark.parametrize(
    "text",
    [
        "Shenzhen Lingjing Medical Co. Ltd. said on Monday that it would cut prices.",
        "Acme Inc. raised $40 million, the company said.",
        "The U.S. Food and Drug Administration cleared the tool in May.",
        "Dr. Li Wei, who heads the radiology department, disagreed.",
        "The notice was published at 3 p.m. on Thursday by the commission.",
        "Patients at No. 3 People's Hospital were the first to use it.",
        "Revenue fell 8.3% to 412.5 million yuan in the first half.",
        "Shares of Lingjing (688289.SH) fell 4.7% in Shanghai.",
        '"The software is useful. But nobody pays for it," the director said.',
        "The company (which listed in 2021. after two attempts) declined to comment.",
        "Prof. Zhang and Mr. Chen, e.g. the two authors, were not available.",
    ],
)
def test_english_sentence_is_not_split(text: str) -> None:
    assert split_sentences(text) == [text]


def test_english_paragraph_splits_at_real_boundaries() -> None:
    paragraph = "The FDA cleared the tool. It is used by Acme Inc. in 40 hospitals. Sales rose 12%."
    assert split_sentences(paragraph) == ["The FDA cleared the tool.", "It is used by Acme Inc. in 40 hospitals.", "Sales rose 12%."]


def test_chinese_splits_keep_closing_quotes() -> None:
    paragraph = "监管部门表示，AI只能辅助诊断。“我们不会为此付费。”院长说。融资额从115亿元降至29.6亿元！这意味着什么？“真的吗？！”"
    assert split_sentences(paragraph) == [
        "监管部门表示，AI只能辅助诊断。",
        "“我们不会为此付费。”",
        "院长说。",
        "融资额从115亿元降至29.6亿元！",
        "这意味着什么？",
        "“真的吗？！”",
    ]


def test_chinese_quote_with_several_sentences_stays_whole() -> None:
    assert split_sentences("他说：“AI只能辅助。我们不会付费！”随后离开。") == ["他说：“AI只能辅助。我们不会付费！”", "随后离开。"]


@pytest.mark.parametrize(
    "line",
    ["Share this article", "SUBSCRIBE NOW", "Listen to this article", "00:00/00:00", "Advertisement", "Read more: AI in radiology", "分享到：", "责任编辑：王明", "© 2026 Health Wire"],
)
def test_page_furniture_never_becomes_a_sentence(line: str) -> None:
    assert is_furniture(line)
    article = article_from_text(f"Title\n\nThe FDA cleared the tool.\n\n{line}\n\nHospitals bought it.")
    assert [s.text for s in segment(article)] == ["The FDA cleared the tool.", "Hospitals bought it."]


def test_real_sentences_that_mention_furniture_words_are_kept() -> None:
    assert not is_furniture("Investors will share the cost of the trial with the hospital.")
    assert not is_furniture("Readers who subscribe to the newsletter were surveyed about AI scribes in 2025.")


def test_paragraphs_split_on_blank_lines_or_single_lines() -> None:
    assert paragraphs("A one.\nstill one.\n\nB two.") == ["A one.\nstill one.", "B two."]
    assert paragraphs("A one.\nB two.") == ["A one.", "B two."]


def test_segment_numbers_paragraphs_and_links_context() -> None:
    article = article_from_text("Title\n\nFirst one. Second one.\n\n第三句。")
    sentences = segment(article)
    assert [(s.paragraph, s.index, s.lang) for s in sentences] == [(1, 0, "en"), (1, 1, "en"), (2, 2, "zh")]
    assert sentences[1].prev == "First one." and sentences[1].next == "第三句。"
    assert sentences[0].prev == "" and sentences[2].next == ""
    assert all(s.title == "Title" for s in sentences)


def test_sentence_ids_are_stable_and_unique() -> None:
    text = "Title\n\nSame sentence. Other sentence. Same sentence."
    first, second = segment(article_from_text(text)), segment(article_from_text(text))
    assert [s.sentence_id for s in first] == [s.sentence_id for s in second]
    assert len({s.sentence_id for s in first}) == 3
    assert first[2].sentence_id == first[0].sentence_id + "-2"


def test_detect_lang() -> None:
    assert detect_lang("AI 辅助诊断只能用于评估。") == "zh"
    assert detect_lang("The NMPA approved it.") == "en"
