"""Split articles into paragraphs and sentences (English and Chinese).

An article's text has its paragraphs separated by blank lines: ``ingest``
lays pages out that way (see :mod:`annotate.layout`).

English sentence boundaries come from blingfire, then a few merge rules fix
what news text needs ("Dr. Li", "No. 3", quotes and brackets). Chinese is
split at 。！？ with any closing quotes kept on their sentence, which no
library does for us. Page furniture ("Share this article", "00:00/00:00")
never becomes a sentence.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator

import blingfire

from .schemas import Article, Lang, Sentence

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LETTER_OR_CJK = re.compile(r"[^\W\d_]")
_BLANK_LINES = re.compile(r"\n[ \t\u3000]*\n")
_WHITESPACE = re.compile(r"\s+")
# An ellipsis does not end a Chinese sentence: "热门方向……AI和医疗全面融合，似乎已经..." is one.
_ZH_SENTENCE = re.compile(r"[^。！？!?]*?(?:[。！？!?]+|$)[”’」』）)》\"']*")
_EMOTICON_END = re.compile(r"[.!?][\"”’)]*\s+(?:[\U0001F300-\U0001FAFF\u2600-\u27BF]\uFE0F?|[:;]-?[()DPp])(?=\s+[A-Z“\"])")
_EMOTICON_START = re.compile(r"(?:[\U0001F300-\U0001FAFF\u2600-\u27BF]\uFE0F?|[:;]-?[()DPp])\s+(?=[A-Z“\"])")
# A citation or a parenthesis after a full stop stays with its sentence: "...复制。 [4][14]", "...。（图片来源）".
_BRACKETED = re.compile(r"(?:[(（\[【〔][^()（）\[\]【】〔〕]{0,40}[)）\]】〕]\s*)+[.。]?")
# Abbreviations that never end a sentence: a split right after them is wrong.
_NEVER_FINAL = re.compile(
    r"(?:\b(?:Dr|Mr|Mrs|Ms|Prof|Sen|Rep|Gov|Gen|Lt|Col|Capt|St|No|Nos|Vol|Fig|Figs|Art|Sec|vs|approx|est|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|e\.g|i\.e|cf|para|paras|pp|p|v|ch|eq|ed|eds)\.)$",
    re.IGNORECASE,
)
# Search only the end of a sentence for them: the longest is 7 characters.
_NEVER_FINAL_TAIL_CHARS = 12
_OPENERS = {"(": ")", "[": "]", "“": "”", "（": "）", "「": "」", "《": "》", "『": "』"}
MAX_MERGED_CHARS = 600
# blingfire's wrapper holds ~20 bytes per input byte; a one-line paragraph of
# 50 MB is split in windows of this size to keep memory bounded.
EN_WINDOW_CHARS = 100_000

_FURNITURE = re.compile(
    r"""^(?:
        share(?:\s+(?:this|on|via))?(?:\s+(?:article|story|page|post))?\b.*
      | subscribe(?:\s+now|\s+today|\s+to\b.*)?
      | sign\s+up\b.*
      | (?:listen|play)\s+(?:to\s+)?(?:this\s+)?(?:article|story)\b.*
      | \d{1,2}:\d{2}(?::\d{2})?\s*/\s*\d{1,2}:\d{2}(?::\d{2})?
      | advertisement | advert | sponsored(?:\s+content)?
      | (?:related|recommended|more)\s+(?:articles?|stories|reading|news)\b.*
      | read\s+(?:more|next|also)\b.*
      | follow\s+us\b.* | print | email | copy\s+link | comments? | close
      | you\s+have\s+(?:read|\d+)\b.*\bfree\s+(?:articles?|stories)\b.* | get\s+unlimited\s+access\b.*
      | already\s+a\s+(?:subscriber|member)\b.* | (?:log|sign)\s+in(?:\s+to\b.*)? | register\s+(?:now|for\s+free)\b.*
      | (?:accept|reject|manage)\s+(?:all\s+)?cookies\b.* | we\s+use\s+cookies\b.*
      | (?:copyright\s*)?©.* | copyright\s+\d{4}.* | all\s+rights\s+reserved\.?
      | (?:分享|分享到|转发|点赞|在看|收藏|扫码|扫一扫|关注我们|点击关注|阅读原文|阅读全文|返回顶部|打开APP|下载APP)\b.*
      | (?:责任编辑|编辑|校对|审核|来源|原标题|声明|免责声明|版权声明)[：:].*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
FURNITURE_MAX_CHARS = 120


def detect_lang(text: str) -> Lang:
    """``zh`` when at least a fifth of the letters are Chinese characters, else ``en``."""
    # Counted with subn: findall would build a list of every letter of a huge text.
    letters = LETTER_OR_CJK.subn("", text)[1]
    if letters and CJK.subn("", text)[1] * 5 >= letters:
        return "zh"
    return "en"


def is_furniture(text: str) -> bool:
    """True for page furniture and text with no letters at all."""
    stripped = text.strip(" \t|•·-–—>»")
    if not LETTER_OR_CJK.search(stripped):
        return True
    return len(stripped) <= FURNITURE_MAX_CHARS and _FURNITURE.match(stripped) is not None


def paragraphs(text: str) -> list[str]:
    """Paragraphs separated by blank lines; single line breaks when a text has no blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    parts = _BLANK_LINES.split(text) if _BLANK_LINES.search(text) else text.split("\n")
    return [part.strip() for part in parts if part.strip()]


def split_sentences(paragraph: str) -> list[str]:
    """The sentences of one paragraph, whitespace normalised."""
    flat = _WHITESPACE.sub(" ", paragraph).strip()
    if not flat:
        return []
    spans = _split_zh(flat) if detect_lang(flat) == "zh" else _split_en(flat)
    merged = (flat[start:end] for start, end in _merge(flat, spans))
    return [piece for piece in merged if not is_furniture(piece)]


def _stripped(text: str, start: int, end: int) -> tuple[int, int]:
    piece = text[start:end]
    return start + len(piece) - len(piece.lstrip()), start + len(piece.rstrip())


def _split_en(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(text):
        end = len(text)
        if end - start > EN_WINDOW_CHARS:
            space = text.rfind(" ", start + 1, start + EN_WINDOW_CHARS)
            end = space if space > start else start + EN_WINDOW_CHARS
        # blingfire returns no offsets when it fails; keep the text rather than lose it.
        offsets = blingfire.text_to_sentences_and_offsets(text[start:end])[1] or [(0, end - start)]
        if end < len(text) and len(offsets) > 1:
            # The window's last sentence may go on after it: split it again with what follows.
            end = start + offsets[-1][0]
            offsets = offsets[:-1]
        spans.extend(_stripped(text, start + first, start + last) for first, last in offsets)
        start = end
    return _emoticons_end_sentences(text, [(first, last) for first, last in spans if first < last])


def _emoticons_end_sentences(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """An emoji or ":)" after a sentence end belongs to that sentence: "...70 countries! 🍂" / "I hope ...".

    blingfire either keeps the two sentences together or starts the second with the emoticon.
    """
    result: list[tuple[int, int]] = []
    for start, end in spans:
        lead = _EMOTICON_START.match(text, start, end)
        if lead and result and lead.end() < end:
            result[-1] = (result[-1][0], lead.end() - len(lead[0]) + len(lead[0].rstrip()))
            start = lead.end()
        for match in _EMOTICON_END.finditer(text, start, end):
            result.append((start, match.end()))
            start = match.end() + 1
        result.append((start, end))
    return result


def _split_zh(text: str) -> list[tuple[int, int]]:
    spans = (_stripped(text, match.start(), match.end()) for match in _ZH_SENTENCE.finditer(text))
    return [(first, last) for first, last in spans if first < last]


def _unbalanced(text: str) -> bool:
    for opener, closer in _OPENERS.items():
        if text.count(opener) > text.count(closer):
            return True
    return text.count('"') % 2 == 1


def _merge(text: str, spans: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Join spans of ``text`` that were split inside an abbreviation, quote or bracket.

    A merged sentence is the text from its first span's start to its last
    span's end, so it is always a substring of ``text``.
    """
    current: tuple[int, int] | None = None
    for start, end in spans:
        if (
            current is not None
            and current[1] - current[0] < MAX_MERGED_CHARS
            and _belongs_to_previous(text[current[0] : current[1]], text[start:end])
        ):
            current = (current[0], max(current[1], end))
        else:
            if current is not None:
                yield current
            current = (start, end)
    if current is not None:
        yield current


def _belongs_to_previous(previous: str, piece: str) -> bool:
    first = piece[0]
    return (
        first.islower()
        or _BRACKETED.fullmatch(piece) is not None
        or previous[-1] in ",;:，；：、"
        or first in ",;:)]}”’）」》、，；："
        or _NEVER_FINAL.search(previous, max(0, len(previous) - _NEVER_FINAL_TAIL_CHARS)) is not None
        or _unbalanced(previous)
    )


def sentence_id(article_id: str, text: str, seen: dict[str, int]) -> str:
    """Stable id from the article id and the sentence text; repeats get ``-2``, ``-3``..."""
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]
    seen[digest] = seen.get(digest, 0) + 1
    suffix = f"-{seen[digest]}" if seen[digest] > 1 else ""
    return f"{article_id}-{digest}{suffix}"


def segment(article: Article) -> list[Sentence]:
    """The sentences of ``article`` with paragraph numbers, ids and neighbouring context."""
    return list(_sentences(article))


def _sentences(article: Article) -> Iterator[Sentence]:
    located: list[tuple[int, str]] = []
    for number, paragraph in enumerate((p for p in paragraphs(article.text) if not is_furniture(p)), start=1):
        located.extend((number, text) for text in split_sentences(paragraph))
    seen: dict[str, int] = {}
    for index, (number, text) in enumerate(located):
        yield Sentence(
            article_id=article.article_id,
            sentence_id=sentence_id(article.article_id, text, seen),
            paragraph=number,
            index=index,
            text=text,
            lang=detect_lang(text),
            title=article.title,
            source=article.source,
            prev=located[index - 1][1] if index else "",
            next=located[index + 1][1] if index + 1 < len(located) else "",
        )


def segment_all(articles: Iterable[Article]) -> Iterator[Sentence]:
    """The sentences of every article, one at a time (a huge article is not held as objects)."""
    for article in articles:
        yield from _sentences(article)
