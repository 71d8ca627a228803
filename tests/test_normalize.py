from assistant.ingest.normalize import fold_width, is_traditional, normalize, normalize_doc_number


def test_traditional_becomes_simplified():
    assert normalize("政務公開考核分值是多少？") == normalize("政务公开考核分值是多少？")
    assert "政务公开" in normalize("加強政務公開組織領導")


def test_simplified_input_is_not_mangled():
    # the reimplemented OpenCC turns 怎么 into 怎幺; the official one must not
    assert normalize("怎么办理") == "怎么办理"


def test_full_width_folds_to_half_width():
    assert fold_width("ＡＢＣ１２３（一）") == "ABC123(一)"
    assert normalize("分值不低於４％") == normalize("分值不低于4%")


def test_doc_number_bracket_variants_unify():
    variants = ["国发〔2016〕55号", "国发[2016]55号", "国发【2016】55号", "国发﹝2016﹞55号",
                "国发(2016)55号", "国发（2016）55号", "國發〔2016〕55號"]
    assert {normalize(v) for v in variants} == {"国发〔2016〕55号"}


def test_parentheses_outside_doc_numbers_are_kept():
    assert normalize_doc_number("办公厅(室)备案") == "办公厅(室)备案"


def test_script_detection():
    assert is_traditional("兩微一端是指什麼？")
    assert not is_traditional("两微一端是指什么？")
