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


def _docx_with_body(path: Path, xml_body: bytes, declared_size: int | None = None) -> Path:
    """A DOCX whose word/document.xml holds `xml_body`; `declared_size` makes its zip directory lie about it."""
    import io
    import struct
    import zipfile

    from docx import Document

    template = io.BytesIO()
    Document().save(template)
    out = io.BytesIO()
    with zipfile.ZipFile(template) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "word/document.xml":
                head, tail = data.split(b"<w:body>", 1)
                data = head + b"<w:body>" + xml_body + tail
            target.writestr(item.filename, data)
    data = out.getvalue()
    if declared_size is not None:  # overwrite the sizes of document.xml in the central directory
        name = b"word/document.xml"
        at = data.rindex(b"PK\x01\x02", 0, data.rindex(name))
        data = data[:at + 24] + struct.pack("<I", declared_size) + data[at + 28:]
    path.write_bytes(data)
    return path


def test_a_docx_that_expands_past_the_limit_is_refused_before_it_is_unpacked(tmp_path: Path):
    import tracemalloc

    paragraph = "<w:p><w:r><w:t>政务公开政务公开政务公开</w:t></w:r></w:p>".encode()
    bomb = _docx_with_body(tmp_path / "bomb.docx", paragraph * 400_000)  # 26 MB of XML in a small zip
    assert bomb.stat().st_size < 1_000_000
    tracemalloc.start()
    with pytest.raises(CorpusError) as info:
        load_document(bomb, tmp_path, Limits(max_expanded_bytes=5_000_000))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "bomb.docx" in str(info.value) and "over the 5,000,000-byte limit" in str(info.value)
    assert peak < 10_000_000  # refused from the zip's directory, nothing was expanded


def test_a_docx_whose_zip_directory_lies_about_sizes_is_refused(tmp_path: Path):
    paragraph = "<w:p><w:r><w:t>政务公开</w:t></w:r></w:p>".encode()
    liar = _docx_with_body(tmp_path / "liar.docx", paragraph * 200_000, declared_size=2000)
    with pytest.raises(CorpusError) as info:
        load_document(liar, tmp_path, Limits(max_expanded_bytes=5_000_000))
    assert "liar.docx" in str(info.value)


def test_text_and_clause_bounds_name_the_file(tmp_path: Path):
    from assistant.ingest.clauses import parse_clauses
    from assistant.ingest.limits import check_clauses

    long = write(tmp_path / "long.txt", "一、" + "很长的内容。" * 2000)
    with pytest.raises(CorpusError) as info:
        load_document(long, tmp_path, Limits(max_text_chars=5000))
    assert "long.txt" in str(info.value) and "5,000 characters" in str(info.value)
    many = load_document(write(tmp_path / "many.txt", "\n".join(f"第{i}条　内容{i}。" for i in range(1, 40))),
                         tmp_path)
    with pytest.raises(CorpusError) as info:
        check_clauses(len(parse_clauses(many)), "many.txt", Limits(max_clauses=10))
    assert "many.txt" in str(info.value) and "over the limit of 10" in str(info.value)


def test_front_matter_with_yaml_aliases_is_refused_at_once(tmp_path: Path):
    import time

    levels = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 8)}]\n" for i in range(1, 10))
    front = f"l0: &l0 [x, x, x, x, x, x, x, x]\n{levels}title: t"
    bomb = write(tmp_path / "bomb.md", f"---\n{front}\n---\n第一条　内容。\n")
    started = time.monotonic()
    with pytest.raises(CorpusError) as info:
        load_document(bomb, tmp_path)
    assert time.monotonic() - started < 1
    assert "bomb.md" in str(info.value) and "anchors or aliases" in str(info.value)
    huge = write(tmp_path / "huge.md", "---\ntitle: t\nnote: " + "长" * 30_000 + "\n---\n第一条　内容。\n")
    with pytest.raises(CorpusError, match="front matter is 30,"):
        load_document(huge, tmp_path)


def test_a_docx_table_keeps_its_rows_and_its_numbers_are_not_clauses(tmp_path: Path):
    from docx import Document

    from assistant.ingest.clauses import parse_clauses

    document = Document()
    for line in ("关于做好测试工作的通知", "一、总体要求", "测试工作要按时完成。", "二、补贴标准", "补贴标准见下表。"):
        document.add_paragraph(line)
    table = document.add_table(rows=4, cols=4)
    rows = (("类别", "2024年", "2025年", "2026年"), ("一、城镇", "", "", ""), ("1.低保家庭", "300", "300", "300"),
            ("2.特困人员", "500", "600", "600"))
    for row, cells in zip(table.rows, rows, strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    table.rows[1].cells[0].merge(table.rows[1].cells[3])  # a group row over the whole width
    document.add_paragraph("三、组织实施")
    document.add_paragraph("各地要抓好落实。")
    document.save(str(tmp_path / "t.docx"))
    doc = load_document(tmp_path / "t.docx", tmp_path)
    assert "| 一、城镇 |" in doc.text and "| 1.低保家庭 | 300 | 300 | 300 |" in doc.text
    clauses = parse_clauses(doc)
    assert [c.label for c in clauses] == ["一、", "二、", "三、"]
    assert "| 2.特困人员 | 500 | 600 | 600 |" in clauses[1].text
