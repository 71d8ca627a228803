from pathlib import Path

import pytest

from assistant.errors import CorpusError
from assistant.ingest.limits import Limits
from assistant.ingest.loaders import load_corpus, load_document

NOTICE = "关于做好测试工作的通知\n测政发〔2024〕7号\n一、总体要求\n（一）按时完成测试工作。\n（二）测试结果要公开。\n"


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_markdown_front_matter(tmp_path: Path):
    file = write(tmp_path / "a.md", "---\ntitle: 测试通知\ndoc_number: 测政发[2024]7号\nstatus: 已废止\n"
                 "publish_date: 2024-03-01\nkind: policy\nreplaced_by: 新通知\n---\n# 测试通知\n\n一、内容。\n")
    doc = load_document(file, tmp_path)
    assert doc.doc_id == "a"
    assert doc.title == "测试通知"
    assert doc.doc_number == "测政发〔2024〕7号"
    assert doc.status == "已废止"
    assert doc.publish_date == "2024-03-01"
    assert doc.replaced_by == "新通知"
    assert doc.text.count("测试通知") == 1


def test_title_and_doc_number_are_inferred_from_plain_text(tmp_path: Path):
    doc = load_document(write(tmp_path / "n.txt", NOTICE), tmp_path)
    assert doc.title == "关于做好测试工作的通知"
    assert doc.doc_number == "测政发〔2024〕7号"


def test_gbk_text_is_detected(tmp_path: Path):
    doc = load_document(write(tmp_path / "gbk.txt", NOTICE.encode("gbk")), tmp_path)
    assert "按时完成测试工作" in doc.text


def test_gb18030_and_utf8_bom(tmp_path: Path):
    assert "测试" in load_document(write(tmp_path / "g.txt", NOTICE.encode("gb18030")), tmp_path).text
    assert load_document(write(tmp_path / "b.txt", b"\xef\xbb\xbf" + NOTICE.encode()), tmp_path).title == \
        "关于做好测试工作的通知"


def test_html_drops_page_chrome(tmp_path: Path):
    html = ("<html><head><title>站点 - 通知</title><script>var x=1;</script></head><body>"
            "<nav>首页 | 政务公开</nav><h1>关于做好测试工作的通知</h1><p>一、总体要求</p>"
            "<p>（一）按时完成测试工作。</p><footer>版权所有</footer></body></html>")
    doc = load_document(write(tmp_path / "p.html", html), tmp_path)
    assert doc.title == "关于做好测试工作的通知"
    assert "按时完成测试工作" in doc.text
    assert "var x" not in doc.text and "版权所有" not in doc.text and "首页" not in doc.text


def test_docx(tmp_path: Path):
    from docx import Document

    document = Document()
    for line in NOTICE.splitlines():
        document.add_paragraph(line)
    document.save(str(tmp_path / "d.docx"))
    doc = load_document(tmp_path / "d.docx", tmp_path)
    assert doc.title == "关于做好测试工作的通知"
    assert "测试结果要公开" in doc.text


def test_pdf_text_layer(tmp_path: Path):
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    pdf = canvas.Canvas(str(tmp_path / "p.pdf"))
    pdf.setFont("STSong-Light", 12)
    for i, line in enumerate(NOTICE.splitlines()):
        pdf.drawString(72, 760 - 20 * i, line)
    pdf.save()
    doc = load_document(tmp_path / "p.pdf", tmp_path)
    assert doc.title == "关于做好测试工作的通知"
    assert "按时完成测试工作" in doc.text


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.md", b"", "empty file"),
        ("binary.txt", b"\x00\x01\x02\x03" * 50, "binary content"),
        ("broken.docx", b"PK\x03\x04 not really a zip", "not a readable DOCX"),
        ("broken.pdf", b"%PDF-1.4\n garbage", "PDF"),
        ("bad.md", "---\ntitle: [unclosed\n---\n正文\n", "malformed front matter"),
        ("kind.md", "---\ntitle: x\nkind: memo\n---\n正文\n", "'kind'"),
    ],
)
def test_bad_files_get_a_clear_error_naming_the_file(tmp_path: Path, name: str, content: bytes | str,
                                                     reason: str):
    file = write(tmp_path / name, content)
    with pytest.raises(CorpusError) as info:
        load_document(file, tmp_path)
    assert name in str(info.value)
    assert reason in str(info.value)


def test_one_broken_file_does_not_stop_the_others(tmp_path: Path):
    write(tmp_path / "good.txt", NOTICE)
    write(tmp_path / "broken.docx", b"not a docx")
    write(tmp_path / "too-big.txt", "一、" + "很长的内容。" * 100)
    write(tmp_path / "notes.csv", "ignored")
    result = load_corpus([tmp_path], Limits(max_file_bytes=500))
    assert [d.doc_id for d in result.documents] == ["good"]
    assert sorted(Path(e.path).name for e in result.errors) == ["broken.docx", "too-big.txt"]
    assert "limit" in str([e for e in result.errors if "too-big" in e.path][0])
