"""Page layout: which lines are units of their own, which are joined, which are furniture."""

from __future__ import annotations

import hashlib

import pytest

from annotate.ingest import article_from_text
from annotate.layout import Kind, line_kind, strip_bullet, units
from annotate.segment import segment

WRAPPED = """\
This week the European Commission published its long-awaited guidance
on how the AI Act applies to medical devices. Manufacturers of
radiology software will have to show that their training data are
representative of the patients they serve, and notified bodies will
check this as part of conformity assessment."""
WRAPPED_JOINED = (
    "This week the European Commission published its long-awaited guidance on how the AI Act applies to medical devices. "
    "Manufacturers of radiology software will have to show that their training data are representative of the patients "
    "they serve, and notified bodies will check this as part of conformity assessment."
)


def texts(text: str) -> list[str]:
    return [s.text for s in segment(article_from_text(text, title=""))]


def test_a_copied_who_is_who_box_keeps_names_and_descriptions_apart() -> None:
    page = """Share this article
Open WeChat and scan the QR code
DIGEST HUB
Explore the story in 30 seconds
  • AI is expanding in Chinese medicine, but hospitals doubt its value.
AI generated, for reference only
Who's Who
Sansure Biotech Inc.
Sansure Biotech Inc. is a diagnostic tool maker. It listed in Shanghai.
Tencent Holdings Ltd.
The internet group behind WeChat."""
    assert units(page) == [
        "DIGEST HUB",
        "Explore the story in 30 seconds",
        "AI is expanding in Chinese medicine, but hospitals doubt its value.",
        "Who's Who",
        "Sansure Biotech Inc.",
        "Sansure Biotech Inc. is a diagnostic tool maker. It listed in Shanghai.",
        "Tencent Holdings Ltd.",
        "The internet group behind WeChat.",
    ]
    numbers = [s.paragraph for s in segment(article_from_text(page, title=""))]
    assert numbers == [1, 2, 3, 4, 5, 6, 6, 7, 8]


def test_a_timeline_label_joins_its_entry() -> None:
    page = "What Happened When\nLate 2022:\nFunding dried up.\nIn 2023:\nOnly two deals were signed.\nFeb. 12, 2025:\nSansure linked its platform to DeepSeek."
    assert units(page) == [
        "What Happened When",
        "Late 2022: Funding dried up.",
        "In 2023: Only two deals were signed.",
        "Feb. 12, 2025: Sansure linked its platform to DeepSeek.",
    ]


def test_bare_dates_are_labels_only_where_the_page_has_a_timeline() -> None:
    timeline = "概念发展脉络\n2024.04\n工信部印发实施方案。\n2025.02\nDeepSeek开源大模型。"
    assert units(timeline) == ["概念发展脉络", "2024.04 工信部印发实施方案。", "2025.02 DeepSeek开源大模型。"]
    dateline = "Ruby Wang\nOct 01, 2025\nHello readers,\nThe autumn issue is here."
    assert units(dateline) == ["Hello readers,", "The autumn issue is here."]


def test_hard_wrapped_prose_is_joined_and_headings_and_paragraphs_stay_apart() -> None:
    text = f"What the study found\n\n{WRAPPED}\n\nWhy it matters\n{WRAPPED}"
    assert units(text) == ["What the study found", WRAPPED_JOINED, "Why it matters", WRAPPED_JOINED]


def test_indented_first_lines_start_paragraphs_and_list_items_take_their_hanging_lines() -> None:
    text = (
        "   Any course on expert systems has to cover MYCIN. Among the very\n"
        "first expert systems, it shaped how later commercial systems were\n"
        "designed and sold to hospitals.\n"
        "   MYCIN was developed at Stanford in the 1970s by E. H. Shortliffe,\n"
        "working with B. G. Buchanan and S. N. Cohen on blood infections.\n"
        "- Engaging clinicians was hard when teams were already overloaded.\n"
        "  Sceptics, particularly senior staff, asked who would be accountable\n"
        "  and wanted humans clearly in charge.\n"
        "- Integration was complicated."
    )
    assert units(text) == [
        "Any course on expert systems has to cover MYCIN. Among the very first expert systems, it shaped how later commercial systems were designed and sold to hospitals.",
        "MYCIN was developed at Stanford in the 1970s by E. H. Shortliffe, working with B. G. Buchanan and S. N. Cohen on blood infections.",
        "Engaging clinicians was hard when teams were already overloaded. Sceptics, particularly senior staff, asked who would be accountable and wanted humans clearly in charge.",
        "Integration was complicated.",
    ]


def test_wrapped_chinese_is_joined_without_spaces_even_inside_an_english_word() -> None:
    text = (
        "　　英國藥物及保健產品管理局（Medicines and Healthcare products Regulato\n"
        "ry Agency, MHRA）於2022年6月22日發表政府回應，說明2021年9月16日至11月25\n"
        "日公眾諮詢的結果。這次諮詢共收到將近900份意見，民眾和業者大約各占一半，\n"
        "多數支持加強醫療器材的安全監管。\n"
        "　　MHRA據此擬定下一步計畫。安全方面，製造商、進口商和經銷商的責任都會加\n"
        "重，並要求在英國設有地址的負責人對瑕疵產品承擔與製造商相同的法律責任。此\n"
        "外，製造商須建立上市後監督系統。"
    )
    assert units(text) == [
        "英國藥物及保健產品管理局（Medicines and Healthcare products Regulatory Agency, MHRA）於2022年6月22日發表政府回應，"
        "說明2021年9月16日至11月25日公眾諮詢的結果。這次諮詢共收到將近900份意見，民眾和業者大約各占一半，多數支持加強醫療器材的安全監管。",
        "MHRA據此擬定下一步計畫。安全方面，製造商、進口商和經銷商的責任都會加重，並要求在英國設有地址的負責人對瑕疵產品承擔與製造商相同的法律責任。此外，製造商須建立上市後監督系統。",
    ]


def test_line_structure_is_decided_per_block() -> None:
    """A copied page with one hard-wrapped block: only that block is joined."""
    long_line = "The committee will give the FDA expert advice on digital health technologies and their benefits, risks and clinical outcomes for patients."
    page = f"Key points\n{long_line}\n{long_line}\n\n{WRAPPED}\n\nAbout AVIA\nAVIA helps health systems."
    assert units(page) == ["Key points", long_line, long_line, WRAPPED_JOINED, "About AVIA", "AVIA helps health systems."]


def test_a_line_that_goes_on_in_lower_case_is_joined() -> None:
    assert units("The agency said the rules for devices sold in the U.S.\ngovernment hospitals would change.") == [
        "The agency said the rules for devices sold in the U.S. government hospitals would change."
    ]


@pytest.mark.parametrize(
    ("line", "text"),
    [
        ("• Bullet", "Bullet"), ("- Dash", "Dash"), ("* Star", "Star"), ("— Em dash", "Em dash"), ("1. One", "One"), ("12.推动", "推动"),
        ("2) Two", "Two"), ("（一）坚持", "坚持"), ("一、总体要求", "总体要求"), ("① 第一", "第一"), ("📰 Story", "Story"), ("※ 预期", "预期"),
        ("3.5亿元", "3.5亿元"), ("2024.04", "2024.04"), ("-30-", "-30-"), ("© 2026", "© 2026"),
    ],
)
def test_bullets_and_numbering_are_cut_off(line: str, text: str) -> None:
    assert strip_bullet(line)[0] == text


@pytest.mark.parametrize(
    "line",
    [
        "分享到：", "扫码关注我们", "微信扫一扫", "责任编辑：王明", "本版责任编辑：李明", "来源：人民日报", "原标题：AI医生来了", "点击查看更多新闻",
        "上一篇：五部门联合发文", "免责声明：本文仅供参考。", "2025年03月17日 14:32 來源：中國新聞周刊", "商报记者 王然 蒋元豪", "（资料图片）",
        "Share this article", "Listen to this article 1x", "SUBSCRIBE NOW", "Published: Feb. 14, 2025  4:38 p.m.  GMT+8", "By Yogesh Hirdaramani",
        "Dave Pearson | August 30, 2023", "Image Credit: ST PHOTOS - GAVIN FOO", "Photo: VCG", "media@example.org", "(555) 010-2563",
        "Print  |  Email", "ALSO READ: HK health summit highlights public health", "You've accessed an article available only to subscribers",
        "The views do not necessarily reflect those of China Daily.", "To unsubscribe, visit https://example.org/unsubscribe",
        "From: Digital Health VC <briefing@example.org>", "Reporting by Jane Doe; Editing by Tom Hogue",
    ],
)
def test_furniture_lines_are_dropped_wherever_they_sit(line: str) -> None:
    assert line_kind(strip_bullet(line)[0]) not in (Kind.TEXT, Kind.LABEL)
    assert units(f"The FDA cleared the tool.\n{line}\nHospitals bought it.") == ["The FDA cleared the tool.", "Hospitals bought it."]


@pytest.mark.parametrize(
    "line",
    [
        "Photo 1: The Secretary for Health visits the IT Command Centre.", "Key Points", "要点", "导读", "重点：", "风险提示：政策推进不及预期。",
        "Who's Who", "What Happened When", "News: China steps up the use of AI in its health sector", "Appendix A: Programme dashboard (available on request)",
        "By the numbers", "Related:", "Readers who subscribe to the newsletter were surveyed about AI scribes in 2025.",
        # Sentences of the starter label set that furniture rules once dropped:
        "Tidewater said patients will be asked for verbal consent, in line with its own privacy policy and state recording laws.",
        "The study did not name the chatbots, citing the terms of use of two of the platforms.",
        "If a chatbot is doing the intake, the savings are flowing somewhere — and it isn't to subscribers.",
        "记者：明年的预算里，AI项目占多少？", "顾客扫码后可以用语音描述症状，系统会推荐非处方药。", "订阅制更像SaaS的打法，一家三级医院一年的授权费通常在20万至60万元之间。",
        "风险提示：政策推进不及预期；本报告所涉公司不构成投资建议。", "（应受访者要求，文中林晓为化名。）", "打开“小禾健康”App，首页最显眼的位置是一个橙色按钮。",
        "The company launched a mobile version of its triage app.",
    ],
)
def test_content_that_looks_like_furniture_is_kept(line: str) -> None:
    assert units(f"The FDA cleared the tool.\n{line}\nHospitals bought it.") == ["The FDA cleared the tool.", line, "Hospitals bought it."]


def test_summary_boxes_and_headings_of_a_chinese_page_are_sentences_with_their_own_paragraph() -> None:
    page = "导读\n多地医院已引入AI辅助诊断系统。\n要点\n1. 首次明确AI辅助诊断可单独收费\n2. 收费标准由各省制定\n分享到：\n责任编辑：李华"
    sentences = segment(article_from_text(page, title=""))
    assert [(s.paragraph, s.text) for s in sentences] == [
        (1, "导读"), (2, "多地医院已引入AI辅助诊断系统。"), (3, "要点"), (4, "首次明确AI辅助诊断可单独收费"), (5, "收费标准由各省制定"),
    ]


def test_links_under_a_related_header_are_dropped_but_a_related_section_with_content_is_kept() -> None:
    tail = "Related articles\nChina's top hospitals race to build their own large models\nAI pediatrician joins expert consultations"
    assert units(f"The FDA cleared the tool.\n{tail}") == ["The FDA cleared the tool."]
    section = "Related:\nMy Mom and Dr Deepseek – Viola Zhou, Rest of World\nThis essay offers a personal view of why patients turn to chatbots."
    assert units(section) == section.split("\n")


def test_bylines_above_and_signatures_below_are_dropped() -> None:
    letter = "罗小芹\n人工智能在医疗领域用得越来越多。\n\nThe team will report back next week.\n\nBest regards,\nPhilip Ward\nEditor in Chief"
    assert units(letter) == ["人工智能在医疗领域用得越来越多。", "The team will report back next week."]


def test_the_title_is_never_page_furniture() -> None:
    article = article_from_text("Skip to main content\nShare\nHospitals race to adopt AI\n\nThe FDA cleared the tool.")
    assert article.title == "Hospitals race to adopt AI"
    assert article.text == "The FDA cleared the tool."


def test_article_ids_come_from_the_text_as_read_so_earlier_ingests_keep_them() -> None:
    article = article_from_text("Title\n\nShare this article\nFirst one.")
    assert article.text == "First one."
    assert article.article_id == "a" + hashlib.sha1(b"Title Share this article First one.").hexdigest()[:12]
