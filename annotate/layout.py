"""Page layout: which lines of a text are paragraphs, headings, list items, labels or furniture.

Text copied from a web page has one page element per line (headline, byline,
"Share this article", key points, a "Who's Who" name followed by its
description, a timeline label followed by its entry); a plain-text archive
or e-mail has prose hard-wrapped at a fixed width. :func:`units` turns
either into units that each get their own paragraph number:

1. Every line is looked at on its own: list bullets and numbering are cut
   off; page furniture (share prompts, paywall and newsletter prompts,
   datelines, bylines, credits, contact blocks, mail headers, UI words) is
   dropped (:func:`line_kind`).
2. Then with its neighbours: a name-like line next to a dateline or contact
   line is part of that block; the links after a "Related articles" header
   are dropped; so are bylines at the top and signatures at the bottom, and
   a bare date is a timeline label only where the page has a timeline.
3. Lines are joined into units only where the text says they belong
   together: a hard-wrapped line that fills the text's line width, a line
   whose next line goes on in lower case, a list item and its indented
   continuation, a timeline label ("2021:", "Late 2022:") and its entry.
   Everything else (headings, names, captions, list items) stays a unit of
   its own.

Every decision is made from a line's shape (length, width, terminal
punctuation, capitalisation, bullets, label colons) and from furniture that
sites share, never from one page's wording. Work is linear in the text size.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from .segment import CJK, LETTER_OR_CJK, detect_lang, is_furniture

# Only lines up to SHORT_LINE_CHARS can be names, labels, datelines or UI words; up
# to LONG_NOTICE_CHARS a disclaimer or paywall notice; anything longer is text.
# Checks look at most this far, so a 50 MB line costs no more than a short one.
SHORT_LINE_CHARS = 160
LONG_NOTICE_CHARS = 400
# Hard-wrapped text is wrapped at 40-120 columns (a CJK character takes 2).
MIN_WRAP_WIDTH, MAX_WRAP_WIDTH = 40, 120
# A link under a "Related" header is a headline: at most this wide.
LINK_MAX_WIDTH = 160
# A signature is at most this many lines after "-- " or "Best regards,".
SIGNATURE_LINES = 6

_TERMINAL = ".!?。！？…"
_CLOSING = "\"'”’)）」』》]】〕"
_CJK_PUNCT = "，。、；：！？（）「」『』《》【】〔〕“”‘’…—·｜"

# --- what one line is, on its own -------------------------------------------------------

_BULLET = re.compile(
    r"""^(?:
        [-–—*•·∙●○◦▪▫■□◆◇►▶▸‣⁃※✓✔✗➢➤→](?=\s|$)
      | [•∙●○◦▪■◆►▶※✓✔➢➤]
      | [(（]?\d{1,2}[.)）、](?![\d.])
      | [(（][一二三四五六七八九十]{1,3}[)）]
      | [一二三四五六七八九十]{1,3}、
      | [\u2460-\u2473]
      | \d\ufe0f?\u20e3
      | [▲▼△▽■□▶◀]
    )[ \t\u3000\u00a0]*""",
    re.VERBOSE,
)
# East Asian wide and full-width characters (Unicode East_Asian_Width W or F) that news text uses.
_WIDE = re.compile(
    r"[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe6b"
    r"\uff00-\uff60\uffe0-\uffe6\U0001F300-\U0001F64F\U0001F900-\U0001F9FF\U00020000-\U0003FFFD]"
)
_PICTOGRAPH = re.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF]")
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_DATE = re.compile(
    rf"""
        \b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?(?!\d)
      | (?<!\d)\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}\.?(?:,?\s+\d{{2,4}})?\b
      | \b{_MONTH}\.?,?\s+\d{{4}}(?!\d)
      | (?<!\d)\d{{4}}[-/.]\d{{1,2}}(?:[-/.]\d{{1,2}})?(?![\d])
      | (?<!\d)\d{{1,2}}[-/.]\d{{1,2}}[-/.]\d{{2,4}}(?!\d)
      | (?<!\d)\d{{4}}\s*年\s*\d{{1,2}}\s*月(?:\s*\d{{1,2}}\s*[日号])?
      | (?<!\d)\d{{1,2}}\s*月\s*\d{{1,2}}\s*[日号]
    """,
    re.IGNORECASE | re.VERBOSE,
)
_TIME = re.compile(
    r"(?<!\d)\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]\.?m\b\.?)?|\b(?:gmt|utc)\s*[+-]\s*\d{1,2}\b|(?<!\w)[+-]\d{4}\b"
    r"|\b(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|nesday|sday|urday)?\b\.?|星期[一二三四五六日天]|周[一二三四五六日]"
    r"|\b(?:gmt|utc|hkt|et|est|edt|pt|pst|pdt|cst|bst|cet|sgt)\b",
    re.IGNORECASE,
)
# "3d", "2 hours ago", "1w • Edited": the age of a post.
_AGO = re.compile(r"(?<![\w.])\d{1,2}\s*(?:s|m|h|d|w|mo|y|mins?|hrs?|hours?|days?|weeks?|months?|years?)\b(?:\s+ago\b)?|\d+\s*(?:分钟|小时|天|周|个月|年)前", re.IGNORECASE)
_DIGIT = re.compile(r"\d")
_LATIN_WORD = re.compile(r"[A-Za-z][\w'’&.-]*")
_DATELINE_EN_MARK = re.compile(r"[|/:·•—–-]|\b(?:by|published|updated|posted|issued|reviewed|due|date|edition|issue)\b", re.IGNORECASE)
_DATELINE_ZH_MARK = re.compile(r"[|｜·/:：]|报|報|版|期|网|網|客户端|客戶端|来源|來源|时间|時間|发布|發布|记者|記者|编辑|編輯|作者")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"^(?:\+?\(?\d[\d ().-]{6,}\d|\d{3}-[A-Z]{4}-[A-Z]{3,4})$")
_URL = re.compile(r"\b[\w-]+\.(?:com|org|net|gov|edu|cn|hk|tw|sg|uk|io)\b", re.IGNORECASE)
_LABEL = re.compile(r"^(?P<key>[^:：]{1,40}?)\s*[:：]\s*(?P<value>.*)$")
# "文｜张三", "封面来源｜视觉中国": Chinese credits use a bar where English uses a colon.
_ZH_BAR_LABEL = re.compile(r"^(?P<key>[\u3400-\u9fff]{1,6})\s*[｜|]\s*(?P<value>[^|｜]{1,30})$")
_ZH_CREDIT_KEYS = frozenset("文 图 圖 编辑 編輯 责编 責編 作者 记者 記者 封面 封面来源 封面來源 题图 題圖 图片 圖片 图源 圖源 摄影 攝影 来源 來源 出品 策划 策劃 设计 設計 排版 审核 審核".split())
_ZH_BYLINE = re.compile(r"记者|記者|通讯员|通訊員|特约撰稿|撰文|文[／/|｜]|图[／/|｜]|圖[／/|｜]|摄影|攝影|[摄攝]$|报道$|報導$|报导$|作者[\s|｜：:]")
# "Bill Siwicki is a writer at Healthcare IT News.": the author's note under an article.
_AUTHOR_BIO = re.compile(
    r"^(?:[A-Z][\w.'’-]+\s+){1,3}(?:is|was)\s+(?:a|an|the)\s+(?:[\w-]+\s+){0,4}"
    r"(?:writer|reporter|editor|correspondent|journalist|columnist|contributor)\b.{0,80}$"
)
# "Health reporter", "Senior Technology Correspondent": the role under a byline.
_AUTHOR_ROLE = re.compile(r"^(?:[A-Za-z&-]+\s+){0,4}(?:reporter|correspondent|editor|writer|journalist|columnist|contributor)s?$", re.IGNORECASE)
_CITY_BYLINE = re.compile(r"(?:[A-Z][\w'’.-]+\s+){2,3}(?:and\s+(?:[A-Z][\w'’.-]+\s+){1,3})?in\s+[A-Z][\w'’.-]+(?:\s+[A-Z][\w'’.-]+)?")
_SEPARATORS = re.compile(r"\s*(?:\||｜|>|»|›)\s*")
_CALL_TO_SUBSCRIBE = re.compile(r"(?:^|[.!?]\s+)(?:click\s+here\s+to\s+)?(?:subscribe|sign\s+up)\b", re.IGNORECASE)
_PHONE_INSIDE = re.compile(r"(?<!\d)\d{3,4}-\d{6,8}(?!\d)|\(\d{3}\)\s?\d{3}-\d{4}")
_SENTENCE_INSIDE = re.compile(r"[.!?。！？][\"'”’)）」』]*\s+\S|[。！？]\S")

# Keys of "Key: value" lines that are metadata whatever the value (mail headers, datelines, credits, contacts).
_META_KEYS = frozenset(
    """from to cc bcc sent date subject newsgroups message-id organization organisation reply-to references lines path
    published updated posted time tags tag topics category categories author authors editor editors reporter reporters
    contact contacts inquiries enquiries media consumer press disclaimer notice copyright credit credits sources
    责任编辑 責任編輯 责编 責編 编辑 編輯 校对 校對 审核 審核 审校 来源 來源 原标题 原標題 作者 记者 記者 通讯员 通訊員 发布时间 發布時間
    发布日期 發布日期 发布部门 發布部門 发文机关 發文機關 发文字号 發文字號 成文日期 索引号 索引號 主题分类 主題分類 时效性 時效性
    效力级别 效力級別 时间 時間 日期 字号 字號 浏览次数 瀏覽次數 阅读量 閱讀量 点击数 點擊數 转载自 轉載自 来源于 來源於 图片来源
    圖片來源 图源 圖源 声明 聲明 免责声明 免責聲明 特别声明 特別聲明 版权声明 版權聲明 联系人 聯繫人 联系 聯繫 联系方式 聯繫方式 电话 電話
    邮箱 郵箱 传真 傳真 地址""".split()
) | {
    "last updated", "news date", "reading time", "agenda item", "report by", "paper type", "filed under", "edited by", "reporting by",
    "written by", "media contact", "media contacts", "media inquiries", "media enquiries", "consumer inquiries", "press contact",
    "press contacts", "press inquiries", "for immediate release", "content current as of", "page last reviewed", "next review due",
    "issued at", "image credit", "photo credit", "picture credit",
}
# "记者：明年的预算里，AI项目占多少？" is an interview question, not a byline.
_ZH_PERSON_KEYS = frozenset("记者 記者 作者 编辑 編輯 通讯员 通訊員".split())
# Keys whose value is a credit or a source when it is short: "Photo: VCG", but not "Photo 1: The minister visits ...".
_CREDIT_KEYS = frozenset({"image", "images", "photo", "photos", "photograph", "picture", "video", "graphic", "illustration", "audio", "source", "图", "圖", "图片", "圖片"})
# Keys that point to another article when the value is a headline: "ALSO READ: ...", "Update: ...".
_LINK_KEYS = frozenset({"also read", "read more", "read also", "see also", "related", "more", "read next", "recommended", "watch", "listen",
                        "update", "editor's pick", "editor’s pick", "don't miss", "must read", "相关阅读", "相關閱讀", "延伸阅读", "延伸閱讀", "推荐阅读", "推薦閱讀"})

# A line that is furniture as a whole ("Share", "Read the full story", "Best regards" is elsewhere) ...
_FURNITURE_LINE = re.compile(
    r"""^(?:
        (?:share|email|e-mail|print|reprints?|like|comments?|restack|repost|send|reply|retweet|save|bookmark|copy\s+link|tweet|pin\s+it|paid|free
          |premium|listen|view\s+options|loading\w*|advertisement|advert|sponsored(?:\s+content)?|close|menu|search|home|subscribe|log\s?in|sign\s+in
          |sign\s+up|end|ends|nnnn|\#{3}|-30-|-\s*ends\s*-|back\s+to\s+top|stay\s+(?:updated|informed|connected|in\s+touch|tuned))
      | (?:english|español|espanol|français|deutsch|português|italiano|русский|中文|简体|繁體|繁体|简体中文|繁體中文|日本語|한국어)
      | (?:ai[-\s]generated,?\s+)?for\s+reference\s+only\.? | (?:[\w']+\s+){1,3}back
      | (?:fda\s+|for\s+)?(?:immediate\s+release|news\s+release|press\s+release) | news\s+provided\s+by
      | read\s+(?:the\s+)?(?:full\s+|original\s+|cover\s+|whole\s+)?(?:story|article|report|post|piece)\s*[→>»]?
      | (?:find\s+out|learn|see|view|load|show)\s+more(?:\s+(?:about|at|on)\b.*)?
      | [\d,.]+[km]?\s+(?:comments?|reposts?|shares?|likes?|reactions?|views?|replies|reads?|claps?|followers?)
      | (?:\#[^\s#]+\s*){1,12}(?:\d+\s*个?)? | \d+\s*min(?:ute)?s?\s+read
      | (?:分享|分享到|分享至|转发|轉發|点赞|點讚|点个赞|讚好|在看|收藏|评论|評論|打印|列印|关闭|關閉|关闭窗口|關閉窗口|打印本页|打印本頁|返回|返回顶部
          |返回頂部|阅读原文|閱讀原文|阅读全文|閱讀全文|打开APP|打開APP|下载APP|下載APP|大字体|小字体|大字體|小字體|中字体|中字體|听新闻|聽新聞
          |商品推荐|商品推薦)[：:]?
      | .{2,40}\s*(?:呈现|呈現|出品|供稿)
      | (?:打开|打開|下载|下載)[^，。]{0,12}(?:APP|客户端|客戶端)(?:[，,]\s*(?:查看|阅读|閱讀|获取|獲取)[^，。]{0,8})?
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
# ... or that begins the way furniture begins ("Continue reading ...", "Reporting by ...", "上一篇：...") ...
_FURNITURE_START = re.compile(
    r"""(?:
        continue\s+reading\b | read\s+original\b | read\s+more\s+(?:from|at|on|about)\b | our\s+standards\b
      | skip\s+to\s+(?:the\s+)?(?:main\s+)?(?:content|navigation|article)
      | view\s+(?:this\s+)?(?:e-?mail|newsletter|message|page)\s+(?:in|on)\s+(?:your|a|the)\s+(?:web\s+)?browser
      | you\s+(?:are\s+receiving|received|got)\s+this\b | to\s+(?:unsubscribe|stop\s+receiving)\b
      | manage\s+(?:your\s+)?(?:e-?mail|email|subscription|notification)s?\s+(?:preferences|settings) | update\s+(?:your\s+)?subscription\s+preferences
      | (?:this|the)\s+(?:newsletter|article|content|information|material|report)\b.{0,80}\b(?:general\s+information|general\s+guide|informational\s+purposes)\b
      | to\s+print\s+this\s+article\b | (?:you['’]ve|you\s+have)\s+accessed\s+an?\s+(?:article|story)\b
      | (?:type|enter)\s+your\s+e-?mail\b | by\s+(?:subscribing|signing\s+up|registering)\b
      | [\w,.]+\s+(?:of\s+)?(?:paid\s+)?(?:subscribers|readers|followers)$
      | (?:unlock|enjoy|get|save|try|start|join|become|upgrade|claim)\b.{0,80}\b(?:subscription|subscribe|membership|discount|free\s+trial|premium)\b
      | (?:join|get|receive)\s+(?:our|the)\b.{0,60}\b(?:community|newsletter|mailing\s+list|updates|briefing)\b
      | (?:plus:\s*)?(?:grab|download|get|claim)\s+(?:your|our|the|a)\s+(?:free\s+)?(?:copy|guide|report|e-?book|white\s?paper|checklist|toolkit)\b
      | (?:next|previous|prev)\s+(?:section|chapter|page|article|story|post)\b
      | (?:additional\s+)?(?:reporting|writing|editing|compiled|produced)\s+by\s+[A-Z]
      | (?:copyright\s*)?(?:©|\(c\)) | copyright\s+\d{4} | all\s+rights\s+reserved
      | (?:字号|字號)[：:] | (?:上一篇|下一篇|上一页|下一页|上一頁|下一頁)(?:[：:\s]|$) | (?:订阅|訂閱)(?:本|我们|我們|电子报|電子報|号|號|频道|頻道|[／/|｜]) | 取消(?:订阅|訂閱) | 收录于(?:合集|话题) | 点个?(?:在看|赞|讚)
    )""",
    re.IGNORECASE | re.VERBOSE,
)
# ... or that says anywhere in a short line what only furniture says.
_FURNITURE_INSIDE = re.compile(
    r"""
        \bscan\b.{0,20}\bqr\s+code\b | \bunsubscribe\b | \b(?:is|are)\s+not\s+(?:legal|medical|financial|investment|tax)\s+advice\b
      | \bviews?\b.{0,60}\bdo(?:es)?\s+not\s+necessarily\s+(?:reflect|represent)\b | \bregistered\s+or\s+log\s?in\b
      | \bavailable\s+(?:only\s+)?(?:to|for)\s+subscribers\b | \bsubscribers\s+only\b
      | \bis\s+an?\s+(?:[\w-]+\s+){0,3}(?:publication|website|newsletter)\s+(?:of|from|by)\b | \bis\s+an?\s+[\w\s-]{0,30}\bpublication\.?$
      | \b(?:plain[-\s]text|text[-\s]only)\s+(?:edition|version|export)\b | \b(?:print|web|e-?mail)\s+edition\b
      | 本文来自 | 本文轉載自 | 本文转载自 | 经授权发布 | 經授權發布 | 观点仅代表作者 | 觀點僅代表作者 | 仅提供信息存储空间服务 | 僅提供信息存儲空間服務
      | (?:扫码|掃碼)(?:关注|關注|下载|下載|阅读|閱讀|观看|觀看|加入|订阅|訂閱) | 扫一扫 | 掃一掃 | 微信扫码 | 微信掃碼 | (?:关注|關注)(?:我们|我們|该公众号|該公眾號|公众号|公眾號|本号) | 点击(?:上方|下方|蓝字|關注|关注|查看) | 點擊(?:上方|下方|藍字|關注|查看)
      | 版权所有 | 版權所有 | 不得转载 | 不得轉載 | 禁止转载 | 禁止轉載 | 严禁转载 | 嚴禁轉載 | 侵权必究 | 侵權必究 | 转载请注明 | 轉載請註明 | 请勿直接回复 | 請勿直接回覆 | ^(?!风险提示|風險提示).*(?:不构成|不構成)(?:任何)?(?:投资|投資)(?:建议|建議)
      | 立即讚好 | 立即点赞 | Facebook專頁 | Facebook专页 | 阅读时长 | 閱讀時長 | 本文字数 | 本文字數 | (?:责任编辑|責任編輯|原标题|原標題)[：:]
    """,
    re.IGNORECASE | re.VERBOSE,
)


# Words without which _FURNITURE_INSIDE cannot match: a substring test is much faster than the regex.
_INSIDE_WORDS = tuple(
    """qr unsubscribe advice necessarily registered subscribers edition version export publication 侵权 侵權 严禁 嚴禁 本文 授权 授權 观点 觀點 存储 存儲 扫 掃 关注 關注 点击 點擊
    版权 版權 转载 轉載 回复 回覆 不构成 不構成 讚好 点赞 facebook 时长 時長 字数 字數 编辑 編輯 标题 標題""".split()
)


def _is_furniture_line(text: str) -> bool:
    if _FURNITURE_LINE.match(text) or _FURNITURE_START.match(text):
        return True
    if len(text) > SHORT_LINE_CHARS:
        return False
    lowered = text.lower()
    return any(word in lowered for word in _INSIDE_WORDS) and _FURNITURE_INSIDE.search(text) is not None


# Picture credits: dropped, and so is a name beside them ("Elise Reuter/MedTech Dive").
_CREDIT_LINE = re.compile(
    r"""^(?:
        .{0,40}\btooltip
      | .{1,40}\s+via\s+(?:getty\s+images|reuters|ap|afp|shutterstock|alamy|imaginechina|bloomberg|vcg)
      | (?:getty\s+images|reuters|ap\s+photo|afp|xinhua|vcg|alamy|shutterstock|imaginechina)(?:\s*/.*)?
      | courtesy\s+(?:of\s+)?.{1,40}
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_RELATED_HEADER = re.compile(
    r"""^(?:
        related\s+(?:articles?|stories|news|content|information|links?|posts?|reading|coverage|topics|documents?)
      | (?:suggested|popular|more)\s+topics | tags | topics | filed\s+under | about\s+the\s+authors?
      | more\s+(?:articles|stories|news|reading)\b.{0,40} | next\s+up\b.{0,40} | recommended(?:\s+for\s+you|\s+reading|\s+stories|\s+articles)?
      | you\s+(?:may|might)\s+also\s+(?:like|be\s+interested\s+in) | further\s+reading | see\s+also | most\s+(?:read|popular)
      | (?:相关|相關)(?:阅读|閱讀|新闻|新聞|文章|报道|報導|法规|法規|文档|文檔|链接|連結|推荐|推薦) | 延伸(?:阅读|閱讀) | 推荐阅读 | 推薦閱讀
      | more\s+(?:from|on)\s+.{1,40} | 往期(?:推荐|推薦|回顾|回顧|精选|精選) | 猜你喜欢 | 猜你喜歡 | 热门推荐 | 熱門推薦 | 更多(?:新闻|新聞|阅读|閱讀|文章)
    )\s*[:：]?$""",
    re.IGNORECASE | re.VERBOSE,
)
_BARE_RELATED = re.compile(r"^(?:related|相关|相關)\s*[:：]?$", re.IGNORECASE)
_CLOSING_LINE = re.compile(
    r"^(?:best(?:\s+regards|\s+wishes)?|kind\s+regards|warm\s+regards|regards|sincerely(?:\s+yours)?|yours(?:\s+(?:sincerely|truly|faithfully))?"
    r"|cheers|many\s+thanks|thanks(?:\s+again)?|with\s+thanks)\s*,?$",
    re.IGNORECASE,
)
_TIME_LABEL_WORD = re.compile(rf"\d|\b{_MONTH}\b|\b(?:spring|summer|autumn|fall|winter|q[1-4]|h[12])\b|[年月日]|季度|上半年|下半年|年底|年初", re.IGNORECASE)
# Common Chinese surnames (simplified and traditional): a 2-3 character line starting with one is a name.
_SURNAMES = frozenset(
    "王李张張刘劉陈陳杨楊黄黃赵趙吴吳周徐孙孫马馬朱胡郭何高林罗羅郑鄭梁谢謝宋唐许許韩韓冯馮邓鄧曹彭曾肖萧蕭田董袁潘于蒋蔣蔡余杜叶葉程苏蘇魏吕呂丁任沈姚卢盧"
    "姜崔钟鍾谭譚陆陸汪范金石廖贾賈夏韦韋付方白邹鄒孟熊秦邱江尹薛闫閆段雷侯龙龍史陶黎贺賀顾顧毛郝龚龔邵万萬钱錢严嚴覃武戴莫孔向汤湯常温溫康施文牛樊葛邢安齐齊易乔喬"
    "伍庞龐颜顏倪庄莊聂聶章鲁魯岳翟殷詹申欧歐耿关關兰蘭焦俞左柳甘祝包宁寧尚符舒阮柯纪紀梅童凌毕畢单單季裴霍涂成苗谷盛曲翁冉骆駱蓝藍路游辛靳管柴蒙鲍鮑华華喻祁蒲房"
    "滕屈饶饒解牟艾尤阳陽时時穆农農司卓古吉缪繆简簡车車项項连連芦蘆麦麥褚娄婁窦竇戚岑景党宫宮费費卜冷晏席卫衛米柏宗瞿桂全佟应應臧闵閔苟邬鄔边邊卞姬师師和仇栾欒"
    "隋商刁沙荣榮巫寇桑郎甄丛叢仲虞敖巩鞏明佘池查麻苑迟遲邝鄺"
)


class Kind(Enum):
    TEXT = "text"  # content: paragraph, heading, name, caption, list item
    FURNITURE = "furniture"  # dropped
    META = "meta"  # dropped, and a name-like line beside it is dropped too (dateline, byline, contact, credit)
    LABEL = "label"  # "2021:", "Late 2022:": joins the entry after it
    DATE = "date"  # a bare date: a timeline label where the page has a timeline, else a dateline
    RELATED = "related"  # "Related articles": dropped with the links after it
    BARE_RELATED = "bare related"  # "Related:": a link header only at the end of a page
    CLOSING = "closing"  # "Best regards,": dropped with the signature after it
    SIGNATURE = "signature"  # "-- ": everything after it is a signature


@dataclass
class Line:
    text: str  # without bullet, leading and trailing white space
    indent: int
    bullet: bool
    block: int  # lines of one block have no blank line between them
    kind: Kind = Kind.TEXT
    cached_width: int = field(default=-1, repr=False)

    @property
    def width(self) -> int:
        """Display width; any line too long to be hard-wrapped counts as the same large width."""
        if self.cached_width < 0:
            self.cached_width = display_width(self.text) if len(self.text) <= 2 * MAX_WRAP_WIDTH else 4 * MAX_WRAP_WIDTH
        return self.cached_width

    @property
    def dropped(self) -> bool:
        return self.kind in (Kind.FURNITURE, Kind.META, Kind.RELATED, Kind.CLOSING, Kind.SIGNATURE)


def display_width(text: str) -> int:
    """Columns on a terminal: CJK characters take two."""
    if text.isascii():
        return len(text)
    return len(text) + len(_WIDE.findall(text))


def strip_bullet(text: str) -> tuple[str, bool]:
    """``text`` without list bullets or numbering ("•", "-", "1.", "(2)", "一、", "①"), and whether it had one."""
    stripped, had = text, False
    while match := _BULLET.match(stripped):
        if not match.end():
            break
        stripped, had = stripped[match.end() :], True
    # A leading emoji or pictograph marks an item too ("📰 How tech is ...").
    while stripped and _PICTOGRAPH.match(stripped[0]) and (len(stripped) == 1 or stripped[1] in " \ufe0f\u3000"):
        stripped, had = stripped[1:].lstrip(" \ufe0f\u3000"), True
    return stripped, had


def line_kind(text: str) -> Kind:
    """What a line (bullet already removed) is, judged on its own."""
    if _is_time_label(text):
        return Kind.LABEL
    if _is_bare_date(text):
        return Kind.DATE
    if not LETTER_OR_CJK.search(text):
        # "00:00", "###", "-----"; but "5)." is the end of a wrapped sentence.
        return Kind.TEXT if re.search(r"\d.*[.!?。！？]$", text) else Kind.FURNITURE
    if len(text) > LONG_NOTICE_CHARS:
        return Kind.TEXT
    if len(text) > SHORT_LINE_CHARS:
        return Kind.FURNITURE if _is_furniture_line(text) or _is_notice(text) else Kind.TEXT
    if _RELATED_HEADER.match(text):
        return Kind.RELATED
    if _is_furniture_line(text) or is_furniture(text) or _is_notice(text) or _is_tag_row(text):
        return Kind.FURNITURE
    if _CREDIT_LINE.match(text) or _is_breadcrumb(text):
        return Kind.META
    if _is_ui_row(text):
        return Kind.FURNITURE
    if _BARE_RELATED.match(text):
        return Kind.BARE_RELATED
    if _CLOSING_LINE.match(text):
        return Kind.CLOSING
    if _is_meta(text):
        return Kind.META
    return Kind.TEXT


def _is_notice(text: str) -> bool:
    """A "Key: value" line whose key makes it metadata or a link, or a call to subscribe."""
    if match := _LABEL.match(text):
        key, value = match["key"].strip().lower(), match["value"].strip()
        if key in ("disclaimer", "notice", "免责声明", "免責聲明", "特别声明", "特別聲明", "声明", "聲明", "版权声明", "版權聲明"):
            return True
        if key in _LINK_KEYS and value and not value.endswith(tuple(_TERMINAL)):
            return True
    # "Thanks for reading X! Subscribe for free ...", "A story from X. Sign up for free here."
    return _CALL_TO_SUBSCRIBE.search(text) is not None and len(_SENTENCE_INSIDE.findall(text)) <= 2


def _is_meta(text: str) -> bool:
    digits = _DIGIT.search(text) is not None
    if "@" in text and (_EMAIL.search(text) and len(text.split()) <= 6 or re.fullmatch(r"@\w{2,}", text)):
        return True
    if _is_address(text) or digits and (_is_dateline(text) or _PHONE.match(text)):
        return True
    if digits and len(text) <= 40 and _PHONE_INSIDE.search(text) and not re.search(r"[。！？]", text):
        return True
    if _is_byline(text):
        return True
    if match := _LABEL.match(text):
        key, value = match["key"].strip().lower(), match["value"].strip()
        if CJK.search(key):
            key = re.sub(r"^(?:本版|本文|本页|本頁|文章|消息|媒体|媒體|新闻|新聞)", "", key)
        question = key in _ZH_PERSON_KEYS and value.endswith(("？", "?", "！", "。"))
        if (key in _META_KEYS or key.startswith("x-")) and not question:
            return True
        if key in _CREDIT_KEYS and value and len(value.split()) <= 8 and not value.endswith(tuple(_TERMINAL)):
            return True
    if re.match(r"^SOURCE\s+\S", text) or re.fullmatch(r"\+?\s*follow(?:ing)?|\d+(?:st|nd|rd|th)\+?", text, re.IGNORECASE):
        return True
    if (match := _ZH_BAR_LABEL.match(text)) and match["key"] in _ZH_CREDIT_KEYS:
        return True
    # A line wholly in brackets: "(资料图片)", "（来源：经济日报）", "[ comp.ai is moderated ... ]", "【编辑:张三】";
    # not a bracketed sentence: "（应受访者要求，文中林晓为化名。）".
    if re.fullmatch(r"[(（\[【〔][^()（）\[\]【】〔〕]*[^.。!?！？][)）\]】〕]", text):
        return True
    return False


def _is_address(text: str) -> bool:
    """A web address on its own, or a banner built around one."""
    if text.endswith(tuple(_TERMINAL)) or "." not in text:
        return False
    return re.search(r"https?://|\bwww\.", text, re.IGNORECASE) is not None or (" " not in text and _URL.search(text) is not None)


def _is_dateline(text: str) -> bool:
    if len(text) > 90 or text.endswith((":", "：")) or not (_DATE.search(text) or re.search(r"\d:\d\d", text) or _AGO.search(text)):
        return False
    clock = re.search(r"\d:\d\d", text) is not None
    rest = _AGO.sub(" ", _TIME.sub(" ", _DATE.sub(" ", text)))
    if re.search(r"[。！？!?]", rest) or re.search(r"\.\s*$", rest) and not re.search(r"\b[ap]\.m\.$", text):
        return False
    words = _LATIN_WORD.findall(rest)
    cjk = len(CJK.findall(rest))
    if not words and not cjk:
        return True
    if cjk > 16 or len(words) > 4:
        return False
    marks = _DATELINE_ZH_MARK if cjk else _DATELINE_EN_MARK
    return marks.search(rest) is not None or (cjk > 0 and clock)


def _is_byline(text: str) -> bool:
    if _AUTHOR_BIO.match(text) or _AUTHOR_ROLE.match(text):
        return True
    if text.endswith(tuple(_TERMINAL)) or len(text) > 60:
        return False
    if CJK.search(text):
        return len(text) <= 40 and not re.search(r"[，。！？；]", text) and _ZH_BYLINE.search(text) is not None
    match = re.match(r"^(?:by|written\s+by|reporting\s+by|words\s+by|text\s+by)\s+(.+)$", text, re.IGNORECASE)
    return match is not None and is_name_like(match[1])


def _is_time_label(text: str) -> bool:
    """ "2021:", "Late 2022:", "Feb. 12, 2025:", "2023年：": a short label that introduces a timeline entry."""
    return text.endswith((":", "：")) and len(text) <= 30 and len(text.split()) <= 5 and _TIME_LABEL_WORD.search(text) is not None


def _is_bare_date(text: str) -> bool:
    match = _DATE.fullmatch(text.rstrip(".")) or _DATE.fullmatch(text)
    return match is not None


def _is_ui_row(text: str) -> bool:
    """ "Print | Email", "Manage your preferences | Unsubscribe": a row of furniture between separators."""
    parts = [part for part in _SEPARATORS.split(text) if part]
    return len(parts) >= 2 and all(_is_furniture_line(part) or is_furniture(part) for part in parts)


def _is_breadcrumb(text: str) -> bool:
    """ "健康 > 新聞 > 醫政健保", "Home » News": the path of a page in its site."""
    parts = [part for part in re.split(r"\s+(?:>|»|›)\s+", text) if part]
    return len(parts) >= 2 and all(len(part) <= 20 and not part.endswith(tuple(_TERMINAL)) for part in parts)


def _is_tag_row(text: str) -> bool:
    """ "OpinionSignals & Early TrendsIdeas & Deep Analysis": section tags whose spaces were lost in copying."""
    return not text.endswith(tuple(_TERMINAL)) and len(re.findall(r"[a-z]{4}[A-Z][a-z]", text)) >= 2


def is_name_like(text: str) -> bool:
    """A short line with no sentence in it: a name, an outlet, a kicker ("Ruby Wang", "Public Affairs", "罗小芹")."""
    if not text or len(text) > 60 or text.endswith(tuple(_TERMINAL) + (":", "：", ",", "，")):
        return False
    if CJK.search(text):
        return len(text) <= 24 and not re.search(r"[，。：；！？、,;:!?]", text)
    words = _LATIN_WORD.findall(text)
    if not words or len(words) > 8 or re.search(r"[.!?]\s", re.sub(r"\b(?:Dr|Mr|Mrs|Ms|Prof|St|Jr|Sr)\.", "", text)):
        return False
    capital = sum(1 for word in words if word[0].isupper())
    return (text[0].isupper() or text[0].isdigit()) and capital * 3 >= len(words) * 2


def _is_chinese_name(text: str) -> bool:
    tokens = text.split()
    return 1 <= len(tokens) <= 3 and all(
        2 <= len(token) <= 3 and token[0] in _SURNAMES and all(CJK.match(char) for char in token) for token in tokens
    )


def _is_prose(line: Line) -> bool:
    """A line that is a sentence or more: where the page's header ends and its footer begins."""
    text = line.text.rstrip(_CLOSING)
    if line.dropped or not text or text[-1] not in _TERMINAL:
        return False
    start = line.text[:100]  # four words are enough
    return len(_LATIN_WORD.findall(start)) + len(CJK.findall(start)) // 2 >= 4


def _is_link_item(line: Line) -> bool:
    """A line after a "Related" header: a headline, not a paragraph."""
    text = line.text
    if line.width > LINK_MAX_WIDTH or text.rstrip(_CLOSING).endswith((".", "。")):
        return False
    return not re.search(r"[.。][\"'”’)）」』]*\s*[^\s\d]", text.rstrip(_CLOSING + "."))  # no second sentence


# --- the lines of a text, and what they are among their neighbours ------------------------


def _lines(text: str) -> list[Line]:
    lines: list[Line] = []
    unjudged: set[int] = set()
    block = 0
    for raw in text.split("\n"):
        content = raw.strip()
        if not content:
            block += 1
            continue
        indent = display_width(raw[: len(raw) - len(raw.lstrip())].replace("\t", "    "))
        stripped, bullet = strip_bullet(content)
        if raw.rstrip() in ("--", "-- "):
            lines.append(Line("--", indent, False, block, Kind.SIGNATURE))
            continue
        if not stripped:
            # A bullet on a line of its own: the item is the next line.
            lines.append(Line("", indent, True, block, Kind.FURNITURE))
            continue
        lines.append(Line(stripped, indent, bullet, block))
        unjudged.add(len(lines) - 1)
    # The rest of a hard-wrapped sentence is text whatever it says; judging only the other lines saves most of the time.
    wraps = _wrap_widths(lines, judged=False)
    for index in sorted(unjudged):
        line, before = lines[index], lines[index - 1] if index else None
        wrap = wraps.get(line.block)
        if wrap is None or before is None or before.kind is not Kind.TEXT or not _wraps_into(before, line, wrap):
            line.kind = line_kind(line.text)
    return lines


def _decide_in_context(lines: list[Line]) -> None:
    _drop_related_links(lines)
    _resolve_bare_dates(lines)
    _drop_names_beside_meta(lines)
    _drop_signature(lines)
    _drop_header_and_footer_names(lines)


def _drop_names_beside_meta(lines: list[Line]) -> None:
    """ "Ruby Wang" above "Oct 01, 2025", "Public Affairs" under "Media Contact:": names that belong to a metadata block.

    A name under a metadata line is kept when content follows it: that is a heading.
    """

    def beside(index: int, step: int) -> Line | None:
        other = index + step
        return lines[other] if 0 <= other < len(lines) and lines[other].block == lines[index].block else None

    def candidate(line: Line) -> bool:
        return line.kind is Kind.TEXT and not line.bullet and is_name_like(line.text)

    for index in range(len(lines) - 1, -1, -1):
        below = beside(index, 1)
        if candidate(lines[index]) and below is not None and below.kind is Kind.META:
            lines[index].kind = Kind.META
    for index, line in enumerate(lines):
        above, below = beside(index, -1), beside(index, 1)
        if candidate(line) and above is not None and above.kind is Kind.META and (below is None or below.dropped or candidate(below)):
            line.kind = Kind.META


def _drop_related_links(lines: list[Line]) -> None:
    if not any(line.kind in (Kind.RELATED, Kind.BARE_RELATED) for line in lines):
        return
    # run_end[i]: the first line from i on that is neither furniture nor a link (computed once: linear).
    run_end = [len(lines)] * (len(lines) + 1)
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        linkish = line.dropped or line.kind is Kind.BARE_RELATED or (line.kind is Kind.TEXT and _is_link_item(line))
        run_end[index] = run_end[index + 1] if linkish else index
    cleared = 0  # lines before this are already dropped: each line is visited once
    for index, line in enumerate(lines):
        if line.kind not in (Kind.RELATED, Kind.BARE_RELATED):
            continue
        end = run_end[index + 1]
        if line.kind is Kind.BARE_RELATED:
            if end < len(lines):  # "Related:" followed by content: a heading of the article
                line.kind = Kind.TEXT
                continue
            line.kind = Kind.RELATED
        for link in lines[max(index + 1, cleared) : end]:
            if not link.dropped:
                link.kind = Kind.FURNITURE
        cleared = max(cleared, end)


def _resolve_bare_dates(lines: list[Line]) -> None:
    """A bare date is a timeline label where the page has several, each followed by an entry; else a dateline."""
    if not any(line.kind is Kind.DATE for line in lines):
        return
    labels = {
        index for index, (line, after) in enumerate(zip(lines, lines[1:], strict=False)) if line.kind is Kind.DATE and _is_entry(line, after)
    }
    timeline = len(labels) >= 2
    for index, line in enumerate(lines):
        if line.kind is Kind.DATE:
            line.kind = Kind.LABEL if timeline and index in labels else Kind.META


def _is_entry(label: Line, line: Line) -> bool:
    return line.block == label.block and line.kind is Kind.TEXT and not line.bullet


def _drop_signature(lines: list[Line]) -> None:
    """Everything after a "-- " delimiter or a "Best regards," that ends a letter is its signature.

    Not when paragraphs follow: then "--" was a rule and "Thanks," a line of the text.
    """
    kept_after = 0
    start: int | None = None
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if line.kind in (Kind.SIGNATURE, Kind.CLOSING):
            following = lines[index + 1 : index + 1 + SIGNATURE_LINES * 4]
            if kept_after > SIGNATURE_LINES or any(len(other.text) > 80 and not other.dropped for other in following):
                line.kind = Kind.TEXT if line.kind is Kind.CLOSING else Kind.FURNITURE
            else:
                start = index
        kept_after += not line.dropped
    if start is not None:
        marker = lines[start].kind
        for other in lines[start + 1 :]:
            if other.kind is Kind.TEXT and (marker is Kind.SIGNATURE or is_name_like(other.text)):
                other.kind = Kind.FURNITURE


def _drop_header_and_footer_names(lines: list[Line]) -> None:
    """Bylines above the first sentence and sign-offs below the last: names, outlets, a kicker in another language."""
    first = next((index for index, line in enumerate(lines) if _is_prose(line)), None)
    last = next((index for index in range(len(lines) - 1, -1, -1) if _is_prose(lines[index])), None)
    if first is None or last is None:
        return
    head, tail = lines[:first], [line for line in lines[last + 1 :] if not line.dropped]
    # The language of the page is only needed when there is a header or a footer to judge.
    language = detect_lang(" ".join(line.text for line in lines if line.kind is Kind.TEXT)) if head or tail else "en"
    for line in head:
        byline = _is_chinese_name(line.text) or _is_foreign(line.text, language) or _is_city_byline(line.text)
        if line.kind is Kind.TEXT and not line.bullet and byline:
            line.kind = Kind.META
    for line in reversed(tail):
        if line.kind is not Kind.TEXT or line.bullet or not (is_name_like(line.text) or _is_foreign(line.text, language)):
            break
        line.kind = Kind.FURNITURE


def _is_foreign(text: str, language: str) -> bool:
    """A short line in the other script: a Chinese signature under an English article, an English banner over a Chinese one."""
    if text.endswith(tuple(_TERMINAL)):
        return False
    if language == "en":
        return CJK.search(text) is not None and not _LATIN_WORD.search(text) and len(text) <= 12
    return not CJK.search(text) and is_name_like(text)


def _is_city_byline(text: str) -> bool:
    """ "Sarah Dai in Beijing"."""
    return _CITY_BYLINE.fullmatch(text) is not None


# --- joining lines into units --------------------------------------------------------------


def _wrap_widths(lines: Sequence[Line], *, judged: bool = True) -> dict[int, int]:
    """Block number -> the column its lines are hard-wrapped at; blocks with one page element per line are absent.

    A hard-wrapped text has most of its non-final lines within a few words of
    one width, and most of them end in the middle of a sentence. The whole text
    is judged first; failing that, each block of three or more lines on its own.
    Before the lines are judged (``judged=False``), every line counts.
    """
    broken = [
        line for line, after in zip(lines, lines[1:], strict=False)
        if after.block == line.block and (not judged or line.kind is Kind.TEXT and after.kind is Kind.TEXT) and line.text
    ]
    width = _common_width(broken, minimum=4)
    if width is not None:
        return {line.block: width for line in lines}
    by_block: dict[int, list[Line]] = {}
    for line in broken:
        by_block.setdefault(line.block, []).append(line)
    found = {block: _common_width(group, minimum=2) for block, group in by_block.items()}
    return {block: value for block, value in found.items() if value is not None}


def _common_width(lines: Sequence[Line], *, minimum: int) -> int | None:
    if len(lines) < minimum:
        return None
    widths = sorted(line.width for line in lines)
    width = widths[(len(widths) - 1) * 9 // 10]
    near = sum(1 for value in widths if width - 15 <= value <= width + 10)
    open_ended = sum(1 for line in lines if not line.text.rstrip(_CLOSING).endswith(tuple(_TERMINAL)))
    if MIN_WRAP_WIDTH <= width <= MAX_WRAP_WIDTH and near * 10 >= len(widths) * 7 and open_ended * 2 >= len(lines):
        return width
    return None


def _keep_wrapped_continuations(lines: list[Line], wraps: dict[int, int]) -> None:
    """ "...closes on" / "Friday." : in hard-wrapped prose, the rest of a sentence is never a dateline or furniture."""
    for line, after in zip(lines, lines[1:], strict=False):
        wrap = wraps.get(line.block)
        if wrap is not None and line.kind is Kind.TEXT and after.kind is not Kind.TEXT and _wraps_into(line, after, wrap):
            after.kind = Kind.TEXT


def _wraps_into(line: Line, after: Line, wrap: int) -> bool:
    """True when ``after`` is the rest of a sentence that ``line`` broke off at the wrap width."""
    return (
        after.block == line.block and not after.bullet and bool(after.text)
        and not line.text.endswith(tuple(_TERMINAL) + (":", "："))
        and _fills_line(line, after, wrap)
    )


def _first_token(text: str) -> str:
    if CJK.match(text) or text[:1] in _CJK_PUNCT:
        return text[:1]
    return text.split(" ", 1)[0]


def _fills_line(line: Line, after: Line, wrap: int) -> bool:
    """True when the next line's first word would not have fitted on this one: the break is a wrap."""
    token = _first_token(after.text)
    space = 0 if CJK.match(token) or token in _CJK_PUNCT else 1
    # Quotes and dashes are one column here but often two where the text was wrapped.
    slack = 4 if CJK.search(line.text) else 2
    return line.width <= wrap + 10 and line.width + space + display_width(token) > wrap - slack


def _continues_lowercase(line: Line, after: Line) -> bool:
    """A line that starts with a word in lower case goes on from the line before ("...the U.S." / "government said").

    Not after a short line: "Abridge" / "ambient AI" are tags, not a sentence.
    """
    word = re.match(r"[^\W\d_]+", after.text)
    return word is not None and word[0].islower() and len(line.text) >= 25 and not line.text.endswith(("?", "!", "？", "！"))


def _joins(line: Line, after: Line, *, wrap: int | None, item: bool, first_indent: int) -> bool:
    """Whether ``after`` goes on the unit that ``line`` is part of."""
    if after.bullet or after.kind is Kind.LABEL:
        return False
    if line.kind is Kind.LABEL:
        return True
    if item and after.indent > 0 and after.indent >= first_indent:
        return wrap is not None or _continues_lowercase(line, after) or not line.text.endswith(tuple(_TERMINAL))
    if _continues_lowercase(line, after):
        return True
    if wrap is None:
        return False
    if after.indent > line.indent and not item:
        return False  # an indented first line starts a paragraph
    return _fills_line(line, after, wrap)


def _joiner(text: str, after: str, *, chinese: bool) -> str:
    """What goes between a wrapped line and the next: nothing in Chinese or after a broken word, else a space."""
    last, first = text[-1:], after[:1]
    east_asian = any(char and (CJK.match(char) or char in _CJK_PUNCT) for char in (last, first))
    if east_asian or (chinese and last.isalnum() and first.isalnum()):
        return ""
    if text.endswith("-") and text[-2:-1].isalpha() and first.islower():
        return ""
    return " "


def units(text: str) -> list[str]:
    """The units of a text, in order: paragraphs, headings, list items, captions; furniture left out.

    Blank lines always separate units. Within a block, lines are joined where
    they were hard-wrapped or go on in lower case, a list item takes its
    indented continuation, and a timeline label takes its entry; any other line
    is a unit of its own.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = _lines(text)
    _decide_in_context(lines)
    wraps = _wrap_widths(lines)
    if wraps:
        _keep_wrapped_continuations(lines, wraps)
    chinese = bool(wraps) and detect_lang(text) == "zh"
    units: list[str] = []
    current: Line | None = None
    pieces: list[str] = []
    item = labelled = False
    first_indent = 0

    def close() -> None:
        if pieces:
            parts = [pieces[0]]
            for before, piece in zip(pieces, pieces[1:], strict=False):
                # A label keeps a space before its entry in either language: "2024.04 工信部印发...".
                parts += [" " if labelled else _joiner(before, piece, chinese=chinese), piece]
            unit = "".join(parts)
            if len(pieces) == 1 or line_kind(unit) is not Kind.FURNITURE:
                units.append(unit)
        pieces.clear()

    for line in lines:
        if line.dropped:
            close()
            current = None
            continue
        wrap = wraps.get(line.block)
        if current is not None and current.block == line.block and _joins(current, line, wrap=wrap, item=item, first_indent=first_indent):
            pieces.append(line.text)
        else:
            close()
            pieces.append(line.text)
            item, labelled, first_indent = line.bullet, line.kind is Kind.LABEL, line.indent + 1
        current = line
    close()
    return units
