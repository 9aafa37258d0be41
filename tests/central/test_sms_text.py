"""SMS texts (pure): Vietnamese folded to GSM-7, parts, an office's templates file and its mistakes."""

from __future__ import annotations

import pytest

from edge.central import smstext
from edge.central.smstext import Texts
from edge.errors import ConfigError

LONG_CODE = "000.00.01.H29-261207-0001"
VALUES = {"receipt": LONG_CODE, "compartment": 12, "pin": "048213", "deadline": 1_800_000_000.0, "code": "654321",
          "score": 5}


@pytest.mark.parametrize("text, folded", [
    ("Kết quả hồ sơ đã sẵn sàng", "Ket qua ho so da san sang"), ("ĐG Đà Nẵng", "DG Da Nang"),
    ("Ông/Bà “vui lòng” – cảm ơn…", 'Ong/Ba "vui long" - cam on...'), ("{x} [y] €", "?x? ?y? ?"),
])
def test_vietnamese_is_folded_to_gsm7(text, folded):
    assert smstext.fold(text) == folded and smstext.is_gsm7(folded)


def test_parts_follow_the_alphabet():
    assert len(smstext.split_parts("a" * 160)) == 1 and len(smstext.split_parts("a" * 161)) == 2
    assert len(smstext.split_parts("ă" * 70)) == 1 and len(smstext.split_parts("ă" * 71)) == 2
    assert [len(p) for p in smstext.split_parts("ă" * 140)] == [67, 67, 6]


@pytest.mark.parametrize("kind", sorted(smstext.DEFAULT_TEMPLATES))
def test_every_default_text_fits_one_part_without_diacritics(kind):
    text = Texts(ascii=True).render(kind, **VALUES)
    assert len(text) <= 160 and smstext.is_gsm7(text) and "{" not in text
    assert Texts().render(kind, **VALUES).startswith(("Bộ phận", "Mã", "Cảm ơn", "Số", "Không", "Cú pháp"))


def test_the_pin_survives_a_long_office_name_in_one_part():
    texts = Texts(ascii=True, office="Ủy ban nhân dân phường Bến Nghé, Quận 1, Thành phố Hồ Chí Minh")
    text = texts.render("result_ready", **VALUES)
    assert len(text) <= 160 and "048213" in text and LONG_CODE in text


def test_an_office_templates_file(tmp_path):
    path = tmp_path / "sms.toml"
    path.write_text('office = "UBND phường Bến Nghé"\n[templates]\n'
                    'reminder = "{office}: hồ sơ {receipt} hết hạn {deadline}."\n'
                    'result_ready = ["{office}: hồ sơ {receipt}, ngăn {compartment}, PIN {pin}.", " DG {receipt} 1-5"]\n',
                    encoding="utf-8")
    texts = Texts.load(str(path))
    assert texts.render("reminder", **VALUES) == "UBND phường Bến Nghé: hồ sơ 000.00.01.H29-261207-0001 hết hạn 15/01/2027."
    assert texts.render("result_ready", **VALUES).endswith("PIN 048213. DG 000.00.01.H29-261207-0001 1-5")
    assert Texts.load(str(path), office="Khác").render("expired", **VALUES).startswith("Khác:")


@pytest.mark.parametrize("toml, says", [
    ('[templates]\nhello = "x"\n', "templates.hello: unknown kind"),
    ('[templates]\nreminder = "{receipt} {phone}"\n', "unknown placeholder(s) ['phone']"),
    ('[templates]\nreminder = "{receipt"\n', "templates.reminder"),
    ('[templates]\nreminder = 5\n', "templates.reminder: expected text"),
    ("office = \n", "--sms-templates"),
])
def test_a_bad_templates_file_is_refused_by_name(tmp_path, toml, says):
    path = tmp_path / "sms.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        Texts.load(str(path))
    assert says in str(err.value)
