"""What a question asks for (when / how much / who / which / how / whether), and whether a sentence carries
that kind of fact: a date or deadline, a figure, an actor, a list, a measure, a rule. Patterns are written on
Simplified text (questions and sentences are converted first)."""

from __future__ import annotations

import re

from assistant.ingest.normalize import normalize

_NUMERAL = r"(?:\d+|[一二两三四五六七八九十百千]+)"
# (kind, what the question says, what a sentence that answers it contains), in the order a question is read
_KINDS: tuple[tuple[str, re.Pattern[str], re.Pattern[str]], ...] = (
    ("when",
     re.compile(r"什么时候|何时|多久|多长时间|期限|时限|截止|之前|以前|几月|哪天|哪一天|日期|几天|多少天|几年|时间"),
     re.compile(rf"{_NUMERAL}\s*(?:年|个月|月|日|天|周|小时|个工作日|工作日)|年底|年内|月底|年初|之日起|即日起|届满"
                r"|[前内]完成|之前|以前|以内|期限|期间|及时")),
    ("how_much",
     re.compile(r"多少|几成|比例|分值|金额|占比|多高|多大|几个|几倍|百分之|标准是|怎么算|多少钱"),
     re.compile(rf"\d|{_NUMERAL}\s*(?:倍|元|分|成|%|个百分点|人|次)|百分之|不低于|不超过|不少于|不高于|以上|以下")),
    ("who",
     re.compile(r"谁|哪个部门|哪些部门|什么部门|由哪|哪级|哪一级|哪些单位|什么单位|哪个单位|负责|主体|找哪"),
     re.compile(r"政府|部门|机关|委员会|单位|办公厅|办公室|法院|检察院|负责|主管|由[\u4e00-\u9fff]{2,}")),
    ("which",
     re.compile(r"哪些|有哪|哪几|包括什么|包括哪|什么(?!时候)|何种|哪种|哪类"),
     re.compile(r"、.*、|包括|下列|[:：]|以下|等")),
    ("how",
     re.compile(r"怎么|如何|怎样|怎么办|办法|措施|做法|流程|程序|途径|方式"),
     re.compile(r"通过|建立|推进|落实|加强|完善|实行|实施|开展|采取|按照|依照|办理|申请|统一|整合")),
    ("whether",
     re.compile(r"吗|是否|能否|可否|可不可以|能不能|要不要|会不会|有没有|是不是|允许|合法"),
     re.compile(r"应当|必须|须|不得|可以|禁止|有权|无权|不予|要|纳入|予以|不能|允许")),
)


def question_kinds(question: str) -> list[str]:
    """The kinds of fact the question asks for, most specific first (a question may ask two: 多久之前要完成吗)."""
    text = normalize(question)
    return [kind for kind, asks, _ in _KINDS if asks.search(text)]


def carries(kind: str, sentence: str) -> bool:
    """Whether the sentence holds the kind of fact that `kind` asks for."""
    text = normalize(sentence)
    return any(name == kind and holds.search(text) for name, _, holds in _KINDS)
