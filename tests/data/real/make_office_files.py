#!/usr/bin/env python3
"""Regenerate the rendered office files of the real-document corpus.

Each rendered file is a REAL government text (see sources/office.md for where every text comes from),
laid out the way an office would produce it:

  docx-*.docx   python-docx: 版头 (issuer mark, 文号 above the title, red rule), a title wrapped over
                several paragraphs, 主送机关, body with typed 一、（一）1. markers, tables as real Word
                tables (merged cells kept), attachments on a new page, sign-off, page numbers in the footer.
  pdf-*.pdf     reportlab, GB/T 9704-like: running header and "— n —" page numbers on every page,
                multi-line title, text flowing across pages, tables split over pages.
  scan-*.pdf    image-only PDF (PIL): pages drawn as 1240x1754 bitmaps, no text layer;
                the exact drawn text goes to scan-*.source.txt.

The texts themselves live in sources/office_texts/<name>.txt in a small line markup:
  @title T      one line of the title (a wrapped title has several)
  @docno N      发文字号
  @to T         主送机关
  @p T          body paragraph
  @center T     centred line inside the body (e.g. the title of a transmitted document)
  @sign T / @date T   sign-off (issuer, date)
  @note T       （此件公开发布） / （本文有删减）
  @break        page break
  @attach T     attachment label line (附件 / 附件： / 附：)
  @atitle T     attachment title line
  @table / @row [json cells] / @endtable   a table; a cell is "text" or {"t": text, "rs": rows, "cs": cols}

Run:  /work/main/.venv/bin/python tests/data/real/make_office_files.py
The real (copied) file pdf-hongze-2023-zwgk-report.pdf is not generated here.
"""
from __future__ import annotations

import datetime
import json
import random
import re
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEXTS = HERE / "sources" / "office_texts"
FONT_PATH = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"

# name -> (issuer mark printed in the 版头, running-header text)
DOCS = {
    "docx-guobanfa-1996-32": ("国务院办公厅文件", "国务院办公厅"),
    "docx-guofa-2019-3": ("国务院文件", "国务院"),
    "docx-guobanfa-2019-2": ("国务院办公厅文件", "国务院办公厅"),
    "pdf-guobanfa-2018-126": ("国务院办公厅文件", "国务院办公厅"),
    "pdf-guobanfa-2019-4": ("国务院办公厅文件", "国务院办公厅"),
    "scan-guobanhan-2005-21": ("", ""),
}

HEAD1 = re.compile(r"^[一二三四五六七八九十]+、")
HEAD2 = re.compile(r"^（[一二三四五六七八九十]+）")


# --------------------------------------------------------------------------- markup


def parse(name: str) -> list[tuple[str, object]]:
    blocks: list[tuple[str, object]] = []
    rows = None
    for raw in (TEXTS / f"{name}.txt").read_text(encoding="utf-8").split("\n"):
        line = raw.rstrip("\r")
        if not line:
            continue
        if line == "@table":
            rows = []
            continue
        if line == "@endtable":
            blocks.append(("table", rows))
            rows = None
            continue
        if line.startswith("@row "):
            rows.append(json.loads(line[5:]))
            continue
        if line == "@break":
            blocks.append(("break", ""))
            continue
        tag, _, text = line.partition(" ")
        blocks.append((tag[1:], text))
    return blocks


def grid(rows: list[list]) -> tuple[list[list[str | None]], list[tuple[int, int, int, int]]]:
    """Expand HTML-like rows (rowspan/colspan) into a full grid + list of spans (r0, c0, r1, c1)."""
    cells: dict[tuple[int, int], str | None] = {}
    spans = []
    for r, row in enumerate(rows):
        c = 0
        for cell in row:
            while (r, c) in cells:
                c += 1
            if isinstance(cell, dict):
                t, rs, cs = cell["t"], cell.get("rs", 1), cell.get("cs", 1)
            else:
                t, rs, cs = cell, 1, 1
            for dr in range(rs):
                for dc in range(cs):
                    cells[(r + dr, c + dc)] = t if (dr, dc) == (0, 0) else None
            if rs > 1 or cs > 1:
                spans.append((r, c, r + rs - 1, c + cs - 1))
            c += cs
    nrows = max(k[0] for k in cells) + 1
    ncols = max(k[1] for k in cells) + 1
    g = [[cells.get((r, c), "") for c in range(ncols)] for r in range(nrows)]
    return g, spans


# --------------------------------------------------------------------------- DOCX


def make_docx(name: str) -> None:
    from docx import Document
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK, WD_LINE_SPACING
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Mm, Pt, RGBColor

    mark, _ = DOCS[name]
    blocks = parse(name)
    doc = Document()
    sec = doc.sections[0]
    sec.page_width, sec.page_height = Mm(210), Mm(297)
    sec.top_margin, sec.bottom_margin = Mm(37), Mm(35)
    sec.left_margin, sec.right_margin = Mm(28), Mm(26)

    def set_font(run, east: str, size: float, bold=False, color=None):
        run.font.size = Pt(size)
        run.font.bold = bold
        run.font.name = "Times New Roman"
        rpr = run._element.get_or_add_rPr()
        fonts = rpr.find(qn("w:rFonts"))
        if fonts is None:
            fonts = OxmlElement("w:rFonts")
            rpr.insert(0, fonts)
        fonts.set(qn("w:eastAsia"), east)
        if color:
            run.font.color.rgb = RGBColor.from_string(color)

    def para(text="", east="仿宋_GB2312", size=16, align=None, indent=True, bold=False, color=None,
             exact=28, space_before=0):
        p = doc.add_paragraph()
        pf = p.paragraph_format
        pf.line_spacing_rule = WD_LINE_SPACING.EXACTLY
        pf.line_spacing = Pt(exact)
        pf.space_before = Pt(space_before)
        pf.space_after = Pt(0)
        if indent:
            pf.first_line_indent = Pt(size * 2)
        if align == "center":
            p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        elif align == "right":
            p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        else:
            p.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
        if text:
            set_font(p.add_run(text), east, size, bold, color)
        return p

    def body_para(text):
        if HEAD1.match(text) and len(text) <= 30 and not text.endswith("。"):
            return para(text, east="黑体")
        m = HEAD2.match(text)
        if m:
            # 楷体 for the marker and its short title (up to the first 。), then 仿宋
            head, _, rest = text.partition("。")
            if len(head) <= 20 and (rest or text.endswith("。")):
                p = para()
                set_font(p.add_run(head + "。"), "楷体_GB2312", 16)
                if rest:
                    set_font(p.add_run(rest), "仿宋_GB2312", 16)
                return p
            return para(text, east="楷体_GB2312")
        return para(text)

    def red_rule():
        p = doc.add_paragraph()
        ppr = p._element.get_or_add_pPr()
        bdr = OxmlElement("w:pBdr")
        bottom = OxmlElement("w:bottom")
        for k, v in (("val", "single"), ("sz", "18"), ("space", "1"), ("color", "FF0000")):
            bottom.set(qn(f"w:{k}"), v)
        bdr.append(bottom)
        ppr.append(bdr)
        p.paragraph_format.space_after = Pt(18)

    def page_break():
        p = doc.add_paragraph()
        p.add_run().add_break(WD_BREAK.PAGE)

    # footer: "— PAGE —", GB/T 9704 style (宋体 四号)
    fp = sec.footer.paragraphs[0]
    fp.alignment = WD_ALIGN_PARAGRAPH.CENTER
    set_font(fp.add_run("— "), "宋体", 14)
    run = fp.add_run()
    set_font(run, "宋体", 14)
    for kind, txt in (("begin", None), ("instr", " PAGE "), ("separate", None), ("text", "1"), ("end", None)):
        if kind == "instr":
            el = OxmlElement("w:instrText")
            el.set(qn("xml:space"), "preserve")
            el.text = txt
        elif kind == "text":
            el = OxmlElement("w:t")
            el.text = txt
        else:
            el = OxmlElement("w:fldChar")
            el.set(qn("w:fldCharType"), kind)
        run._element.append(el)
    set_font(fp.add_run(" —"), "宋体", 14)

    # 版头: issuer mark, 文号 (above the title), red rule
    docno = next(t for k, t in blocks if k == "docno")
    para(mark, east="方正小标宋简体", size=42, align="center", indent=False, color="FF0000", exact=60,
         space_before=24)
    para("", indent=False)
    para(docno, align="center", indent=False)
    red_rule()

    i = 0
    while i < len(blocks):
        kind, val = blocks[i]
        if kind == "title":
            para(val, east="方正小标宋简体", size=22, align="center", indent=False, exact=36)
            if i + 1 < len(blocks) and blocks[i + 1][0] != "title":
                para("", indent=False)
        elif kind == "docno":
            pass  # printed in the 版头
        elif kind == "to":
            para(val, indent=False)
        elif kind == "p":
            body_para(val)
        elif kind == "center":
            para(val, east="方正小标宋简体", size=22, align="center", indent=False, exact=36)
            if i + 1 < len(blocks) and blocks[i + 1][0] != "center":
                para("", indent=False)
        elif kind == "sign":
            para("", indent=False)
            para(val + "　　　　", align="right", indent=False)
        elif kind == "date":
            para(val + "　　　", align="right", indent=False)
        elif kind == "note":
            para(val)
        elif kind == "break":
            page_break()
        elif kind == "attach":
            para(val, east="黑体", indent=False)
        elif kind == "atitle":
            para(val, east="方正小标宋简体", size=22, align="center", indent=False, exact=36)
            if i + 1 < len(blocks) and blocks[i + 1][0] != "atitle":
                para("", indent=False)
        elif kind == "table":
            g, spans = grid(val)
            t = doc.add_table(rows=len(g), cols=len(g[0]))
            t.style = "Table Grid"
            t.alignment = WD_TABLE_ALIGNMENT.CENTER
            covered = set()
            for r0, c0, r1, c1 in spans:
                t.cell(r0, c0).merge(t.cell(r1, c1))
                covered |= {(r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)} - {(r0, c0)}
            for r, row in enumerate(g):
                for c, text in enumerate(row):
                    if (r, c) in covered or text is None:
                        continue
                    cell = t.cell(r, c)
                    lines = (text or "").split("\n")
                    cp = cell.paragraphs[0]
                    for j, ln in enumerate(lines):
                        if j:
                            cp = cell.add_paragraph()
                        cp.paragraph_format.space_after = Pt(0)
                        set_font(cp.add_run(ln), "黑体" if r == 0 else "仿宋_GB2312", 10.5)
            # header row repeats on each page
            trpr = t.rows[0]._tr.get_or_add_trPr()
            hdr = OxmlElement("w:tblHeader")
            hdr.set(qn("w:val"), "true")
            trpr.append(hdr)
        i += 1

    core = doc.core_properties
    core.title = "".join(t for k, t in blocks if k == "title")
    core.author = ""
    core.created = core.modified = datetime.datetime(2024, 1, 1)
    doc.save(HERE / f"{name}.docx")


# --------------------------------------------------------------------------- PDF


def make_pdf(name: str, page_number_style: str) -> None:
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY, TA_LEFT, TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import (
        HRFlowable,
        KeepTogether,
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    if "WQY" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("WQY", FONT_PATH, subfontIndex=0))
    mark, header = DOCS[name]
    blocks = parse(name)
    W, H = A4
    size = 16
    body = ParagraphStyle("body", fontName="WQY", fontSize=size, leading=28, firstLineIndent=2 * size,
                          alignment=TA_JUSTIFY, wordWrap="CJK")
    noind = ParagraphStyle("noind", parent=body, firstLineIndent=0)
    right = ParagraphStyle("right", parent=noind, alignment=TA_RIGHT, rightIndent=4 * size)
    title = ParagraphStyle("title", parent=noind, fontSize=22, leading=34, alignment=TA_CENTER)
    markst = ParagraphStyle("mark", parent=noind, fontSize=40, leading=56, alignment=TA_CENTER,
                            textColor=colors.red)
    center = ParagraphStyle("center", parent=noind, alignment=TA_CENTER)
    head = ParagraphStyle("head", parent=body)
    cell = ParagraphStyle("cell", fontName="WQY", fontSize=10, leading=14, wordWrap="CJK", alignment=TA_LEFT)
    cellh = ParagraphStyle("cellh", parent=cell, alignment=TA_CENTER)

    def esc(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    story = []
    docno = next(t for k, t in blocks if k == "docno")
    story += [Spacer(1, 2 * mm), Paragraph(esc(mark), markst), Spacer(1, 6 * mm),
              Paragraph(esc(docno), center), Spacer(1, 2 * mm),
              HRFlowable(width="100%", thickness=1.5, color=colors.red, spaceAfter=6 * mm)]
    frame_w = W - 28 * mm - 26 * mm
    i = 0
    while i < len(blocks):
        kind, val = blocks[i]
        nxt = blocks[i + 1][0] if i + 1 < len(blocks) else ""
        if kind in ("title", "center", "atitle"):
            story.append(Paragraph(esc(val), title))
            if nxt != kind:
                story.append(Spacer(1, 8 * mm))
        elif kind == "to":
            story.append(Paragraph(esc(val), noind))
        elif kind == "p":
            is_head = (HEAD1.match(val) and len(val) <= 30 and not val.endswith("。")) or \
                (HEAD2.match(val) and len(val) <= 30)
            story.append(Paragraph(esc(val), head if is_head else body))
        elif kind == "sign":
            # the sign-off and its date stay on one page
            date = blocks[i + 1][1] if nxt == "date" else ""
            story.append(KeepTogether([Spacer(1, 12 * mm), Paragraph(esc(val), right),
                                       Paragraph(esc(date), ParagraphStyle("d", parent=right,
                                                                           rightIndent=3 * size))]))
        elif kind == "date":
            pass  # emitted with the sign-off
        elif kind == "note":
            story.append(Paragraph(esc(val), body))
        elif kind == "break":
            story.append(PageBreak())
        elif kind == "attach":
            story.append(Paragraph(esc(val), noind))
        elif kind == "table":
            g, spans = grid(val)
            ncols = len(g[0])
            data = []
            for r, row in enumerate(g):
                data.append([Paragraph(esc(t).replace("\n", "<br/>"), cellh if r == 0 else cell)
                             if t else "" for t in row])
            widths = table_widths(name, ncols, frame_w)
            tbl = Table(data, colWidths=widths, repeatRows=header_rows(val), splitByRow=1)
            st = [("FONTNAME", (0, 0), (-1, -1), "WQY"), ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                  ("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("TOPPADDING", (0, 0), (-1, -1), 3),
                  ("BOTTOMPADDING", (0, 0), (-1, -1), 3)]
            for r0, c0, r1, c1 in spans:
                if r1 - r0 < 4:
                    st.append(("SPAN", (c0, r0), (c1, r1)))
                else:
                    # a tall merged cell cannot cross a page in reportlab: keep the text in its first row
                    # and hide the inner horizontal rules, which looks like a merged cell split by pages
                    if c1 > c0:
                        st.append(("SPAN", (c0, r0), (c1, r0)))
                    st.append(("LINEBELOW", (c0, r0), (c1, r1 - 1), 0.6, colors.white))
            tbl.setStyle(TableStyle(st))
            story.append(tbl)
        i += 1

    def on_page(canv, d):
        canv.saveState()
        canv.setFont("WQY", 10.5)
        canv.setFillColor(colors.HexColor("#555555"))
        canv.drawString(28 * mm, H - 20 * mm, header)
        canv.drawRightString(W - 26 * mm, H - 20 * mm, docno)
        canv.setLineWidth(0.4)
        canv.line(28 * mm, H - 22 * mm, W - 26 * mm, H - 22 * mm)
        canv.setFillColor(colors.black)
        canv.setFont("WQY", 14)
        n = canv.getPageNumber()
        label = f"— {n} —"
        y = 20 * mm
        if page_number_style == "gbt9704":  # odd pages right, even pages left, one character in
            if n % 2:
                canv.drawRightString(W - 26 * mm - 14, y, label)
            else:
                canv.drawString(28 * mm + 14, y, label)
        else:
            canv.drawCentredString(W / 2, y, label)
        canv.restoreState()

    title_text = "".join(t for k, t in blocks if k == "title")
    doc = SimpleDocTemplate(str(HERE / f"{name}.pdf"), pagesize=A4, leftMargin=28 * mm, rightMargin=26 * mm,
                            topMargin=37 * mm, bottomMargin=35 * mm, title=title_text, author=header,
                            creator="make_office_files.py", invariant=1)
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)


def header_rows(rows: list[list]) -> int:
    first = rows[0]
    return max((c.get("rs", 1) if isinstance(c, dict) else 1) for c in first)


def table_widths(name: str, ncols: int, total: float) -> list[float]:
    shares = {
        ("pdf-guobanfa-2018-126", 5): [0.08, 0.21, 0.39, 0.20, 0.12],
        ("pdf-guobanfa-2019-4", 5): [0.11, 0.12, 0.23, 0.08, 0.46],
    }.get((name, ncols), [1 / ncols] * ncols)
    return [total * s for s in shares]


# --------------------------------------------------------------------------- scan


def make_scan(name: str) -> None:
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    blocks = parse(name)
    PW, PH = 1240, 1754
    LM, RM, TM, BM = 130, 130, 170, 190
    fs, tfs = 32, 40
    lead, tlead = 54, 62
    font = ImageFont.truetype(FONT_PATH, fs, index=0)
    tfont = ImageFont.truetype(FONT_PATH, tfs, index=0)
    rnd = random.Random(21)

    # lay out lines: (text, font, x_mode, leading); x_mode in left/indent/center/right
    lines: list[tuple[str, object, str, int]] = []

    no_start = set("，。、；：？！）》」』】”’%,.;:!?)")
    no_end = set("（《「『【“‘(")

    def wrap(text: str, f, first_indent: int) -> list[str]:
        """Greedy CJK wrap with simple kinsoku: closing punctuation hangs, opening punctuation and
        digit/latin runs are not split from what follows."""
        width = PW - LM - RM
        tokens = re.findall(r"[0-9A-Za-z.%\-]+|.", text)
        out, cur, w = [], "", first_indent
        for tok in tokens:
            tw = f.getlength(tok)
            if w + tw > width and cur:
                if tok in no_start:
                    cur += tok
                    out.append(cur)
                    cur, w = "", 0
                    continue
                carry = ""
                while cur and cur[-1] in no_end:
                    carry, cur = cur[-1] + carry, cur[:-1]
                out.append(cur)
                cur, w = carry, f.getlength(carry)
            cur += tok
            w += tw
        if cur:
            out.append(cur)
        return out

    docno = next(t for k, t in blocks if k == "docno")
    lines.append((docno, font, "center", lead))
    lines.append(("", font, "left", lead // 2))
    for kind, val in blocks:
        if kind in ("title", "atitle"):
            lines.append((val, tfont, "center", tlead))
        elif kind == "to":
            lines.append(("", font, "left", lead // 2))
            for ln in wrap(val, font, 0):
                lines.append((ln, font, "left", lead))
        elif kind in ("p", "note"):
            for j, ln in enumerate(wrap(val, font, 2 * fs)):
                lines.append((ln, font, "indent" if j == 0 else "left", lead))
        elif kind == "sign":
            lines.append(("", font, "left", lead))
            lines.append((val + "　　　　", font, "right", lead))
        elif kind == "date":
            lines.append((val + "　　　", font, "right", lead))
        elif kind == "break":
            lines.append(("\f", font, "left", 0))
        elif kind == "attach":
            lines.append((val, font, "left", lead))

    pages: list[list[tuple]] = [[]]
    y = TM
    for ln in lines:
        if ln[0] == "\f":
            if pages[-1]:
                pages.append([])
                y = TM
            continue
        if y + ln[3] > PH - BM:
            pages.append([])
            y = TM
        pages[-1].append((ln, y))
        y += ln[3]

    images, drawn = [], []
    for n, page in enumerate(pages, 1):
        img = Image.new("L", (PW, PH), 255)
        d = ImageDraw.Draw(img)
        for (text, f, mode, _), yy in page:
            if not text:
                continue
            w = f.getlength(text)
            x = {"left": LM, "indent": LM + 2 * fs, "center": (PW - w) / 2, "right": PW - RM - w}[mode]
            d.text((x, yy), text, font=f, fill=20)
            drawn.append(text)
        pn = f"— {n} —"
        d.text(((PW - font.getlength(pn)) / 2, PH - 120), pn, font=font, fill=20)
        drawn.append(pn)
        # light scanner noise and softening
        px = img.load()
        for _ in range(2500):
            px[rnd.randrange(PW), rnd.randrange(PH)] = rnd.randrange(150, 230)
        img = img.filter(ImageFilter.GaussianBlur(0.6)).convert("RGB")
        images.append(img)
        drawn.append("\f")
    fixed = time.gmtime(1704067200)  # 2024-01-01, keeps the PDF byte-stable
    images[0].save(HERE / f"{name}.pdf", save_all=True, append_images=images[1:], resolution=150.0,
                   creationDate=fixed, modDate=fixed, producer="make_office_files.py")
    text = "\n".join(drawn).rstrip("\f\n") + "\n"
    text = text.replace("\n\f\n", "\n\f")
    (HERE / f"{name}.source.txt").write_text(text, encoding="utf-8")


def main() -> None:
    for name in DOCS:
        if name.startswith("docx-"):
            make_docx(name)
        elif name.startswith("pdf-"):
            make_pdf(name, "gbt9704" if name == "pdf-guobanfa-2019-4" else "center")
        elif name.startswith("scan-"):
            make_scan(name)
        print("wrote", name)


if __name__ == "__main__":
    main()
