"""What a scanned text means: byte-exact tables of codes that must be recognised or refused."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.qr.codes import KINDS, crc16_ccitt_false, parse, parse_tlv

VIETQR_STATIC = ("00020101021138570010A00000072701270006970403011200110123456780208QRIBFTTA"
                 "53037045802VN6304F4E5")
VIETQR_DYNAMIC = ("00020101021238570010A00000072701270006970403011300110123456780208QRIBFTTA"
                  "530370454061800005802VN62340107NPS68690819thanh toan don hang63042E2E")
OLD = "https://dichvucong.gov.vn/p/home/"


@pytest.mark.parametrize("text, code, extra", [
    ("1.001193", "1.001193", {}),
    ("2.000806", "2.000806", {}),
    ("3.000123", "3.000123", {}),
    ("1.011441.000.00.00.H38", "1.011441.000.00.00.H38", {"province": "H38", "base": "1.011441"}),
    ("1.000494.000.00.00.H29", "1.000494.000.00.00.H29", {"province": "H29"}),
    ("1.013229.01", "1.013229.01", {"online_variant": "01", "base": "1.013229"}),
    ("2.000815.000.00.00.H55.02", "2.000815.000.00.00.H55.02", {"online_variant": "02", "province": "H55"}),
    ("  1.001193\n", "1.001193", {}),  # scanners often add a newline
])
def test_procedure_codes_are_recognised(text, code, extra):
    parsed = parse(text)
    assert parsed.kind == "procedure"
    assert parsed.fields["code"] == code
    for key, value in extra.items():
        assert parsed.fields[key] == value


@pytest.mark.parametrize("text", [
    "1.0016125", "21.001612", "0.001193", "1.00119", "1.001193.", "1.001193.000.00.00.h38",
    "1.001193.000.00.00", "1.001193x", "x1.001193", "1,001193", "１.００１１９３",
])
def test_near_procedure_codes_are_refused(text):
    assert parse(text).kind == "unknown"


@pytest.mark.parametrize("url, code", [
    (OLD + "dvc-chi-tiet-thu-tuc-hanh-chinh.html?ma_thu_tuc=1.001193", "1.001193"),
    (OLD + "dvc-chi-tiet-thu-tuc-nganh-doc.html?ma_thu_tuc=2.000815", "2.000815"),
    (OLD + "dvc-chi-tiet-thu-tuc-dung-chung.html?ma_thu_tuc=1.004222", "1.004222"),
    ("https://dichvucong.hochiminhcity.gov.vn/thu-tuc-hanh-chinh/chi-tiet?ma=1.000494.000.00.00.H29",
     "1.000494.000.00.00.H29"),
    ("https://dvc.hanoi.gov.vn/x?MaTTHCDP=1.011441.000.00.00.H26&MaCoQuanThucHien=H26.107", "1.011441.000.00.00.H26"),
    ("https://a.gov.vn/x?ma_thu_tuc=1.000894&MaTTHC=2.000806", "2.000806"),  # MaTTHC is trusted first
    ("HTTPS://DICHVUCONG.GOV.VN/p/home/x.html?ma_thu_tuc=1.001193", "1.001193"),
])
def test_procedure_urls_carry_the_code(url, code):
    parsed = parse(url)
    assert parsed.kind == "procedure_url"
    assert parsed.fields["code"] == code
    assert parsed.code == code


def test_executing_agency_is_kept_from_a_province_url():
    parsed = parse("https://dvc.hanoi.gov.vn/x?MaTTHCDP=1.011441&MaCoQuanThucHien=H26.107")
    assert parsed.fields["executing_agency"] == "H26.107"


@pytest.mark.parametrize("url", [
    "https://dichvucong.gov.vn/thu-tuc-hanh-chinh/3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "https://dichvucong.gov.vn/tim-kiem-thu-tuc-hanh-chinh?formalityId=3FA85F64-5717-4562-B3FC-2C963F66AFA6&x=1",
])
def test_new_portal_uuid_urls(url):
    parsed = parse(url)
    assert parsed.kind == "procedure_url"
    assert parsed.fields["uuid"] == "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    assert "code" not in parsed.fields


@pytest.mark.parametrize("url, reason", [
    (OLD + "dvc-tthc-thu-tuc-hanh-chinh-chi-tiet.html?ma_thu_tuc=6007", "internal id"),
    ("https://evil.example/?ma_thu_tuc=1.001193", "not an allowed host"),
    ("https://gov.vn.evil.example/?ma_thu_tuc=1.001193", "not an allowed host"),
    ("https://evilgov.vn/?ma_thu_tuc=1.001193", "not an allowed host"),
    ("http://dichvucong.gov.vn/?ma_thu_tuc=1.001193", "not https"),
    ("javascript://dichvucong.gov.vn/?ma_thu_tuc=1.001193", "not https"),
    ("https://dichvucong.gov.vn/?ma_thu_tuc=1.0011934", "without a recognised code"),
    ("https://dichvucong.gov.vn:99999/?ma=1.001193", "malformed"),
    ("https://user@dichvucong.gov.vn@evil.example/?ma=1.001193", "not an allowed host"),
])
def test_urls_that_must_not_be_trusted(url, reason):
    parsed = parse(url)
    assert parsed.kind == "unknown"
    assert reason in parsed.reason


def test_allowed_hosts_are_configurable():
    url = "https://dvc.example.org/x?ma=1.001193"
    assert parse(url).kind == "unknown"
    assert parse(url, allowed_hosts=["example.org"]).kind == "procedure_url"


@pytest.mark.parametrize("text, agency, day, seq, strict", [
    ("000.00.01.H29-240115-0001", "000.00.01.H29", "2024-01-15", "0001", True),
    ("000.A0.01.H26-210212-9090", "000.A0.01.H26", "2021-02-12", "9090", True),
    ("38.98.H29-210519-0013", "38.98.H29", "2021-05-19", "0013", False),
    ("000.00.01.H29-240115-000123", "000.00.01.H29", "2024-01-15", "000123", False),
])
def test_receipt_codes(text, agency, day, seq, strict):
    parsed = parse(text)
    assert parsed.kind == "receipt"
    assert parsed.fields == {"code": text, "agency": agency, "date": day, "seq": seq, "strict": strict}


@pytest.mark.parametrize("text", [
    "000.00.01.H29-241315-0001",  # month 13
    "000.00.01.H29-240230-0001",  # 30 February
    "000.00.01.H29-240115-001",  # 3-digit sequence
    "000.00.01.H29-240115-0001-",
    "000.00.01.H29.000.00-240115-0001",  # five agency parts
])
def test_bad_receipt_codes_are_refused(text):
    assert parse(text).kind == "unknown"


def test_receipt_in_a_lookup_url():
    parsed = parse("https://dichvucong.gov.vn/tra-cuu?ma_ho_so=000.00.01.H29-240115-0001")
    assert parsed.kind == "receipt"
    assert parsed.fields["code"] == "000.00.01.H29-240115-0001"


@pytest.mark.parametrize("text, site", [
    ("LH-hn-badinh-260115-0007", "hn-badinh"),
    ("lh-HN-BADINH-260115-0007", "hn-badinh"),
    ("LH-demo-office-261231-9999", "demo-office"),
])
def test_appointment_codes(text, site):
    parsed = parse(text)
    assert parsed.kind == "appointment"
    assert parsed.fields["site"] == site
    assert parsed.fields["code"] == f"LH-{site}-{text[-11:]}"


@pytest.mark.parametrize("text", ["LH--260115-0007", "LH-hn-261340-0007", "LH-hn-260115-007", "XH-hn-260115-0007"])
def test_bad_appointment_codes(text):
    assert parse(text).kind == "unknown"


def test_crc_check_value():
    assert crc16_ccitt_false(b"123456789") == 0x29B1


@pytest.mark.parametrize("text, scheme, dynamic", [(VIETQR_STATIC, "vietqr", False), (VIETQR_DYNAMIC, "vietqr", True)])
def test_vietqr_is_recognised_and_ignored(text, scheme, dynamic):
    parsed = parse(text)
    assert parsed.kind == "payment"
    assert parsed.fields["scheme"] == scheme
    assert parsed.fields["dynamic"] is dynamic
    assert "ignored" in parsed.reason
    assert "0123456789" not in str(parsed.fields)  # the account number is never kept


def test_vietqr_fields_of_a_dynamic_code():
    parsed = parse(VIETQR_DYNAMIC)
    assert parsed.fields["amount"] == "180000"
    assert parsed.fields["bank_bin"] == "970403"


def test_tags_need_not_be_in_order():
    body = "0002010102115802VN530370438570010A00000072701270006970403011300110123456780208QRIBFTTA6304"
    text = body + f"{crc16_ccitt_false(body.encode()):04X}"
    assert parse(text).kind == "payment"


@pytest.mark.parametrize("text, reason", [
    (VIETQR_STATIC[:-1] + "6", "wrong CRC"),
    (VIETQR_STATIC[:-8], "final CRC"),
    ("000201010211385", "not valid TLV"),
    ("000201xx", "not valid TLV"),
])
def test_broken_payment_codes(text, reason):
    parsed = parse(text)
    assert parsed.kind == "unknown"
    assert reason in parsed.reason


def test_tlv_parser_refuses_truncated_values():
    assert parse_tlv("0002010102") is None
    assert parse_tlv("00020101") is None  # a tag without its length
    assert parse_tlv("0002010100") == [("00", "01"), ("01", "")]


@pytest.mark.parametrize("text", ["", "   ", "Đăng ký khai sinh", "hello", "https://", "ftp://gov.vn/x?ma=1.001193"])
def test_other_texts_are_unknown(text):
    parsed = parse(text)
    assert parsed.kind == "unknown"
    assert parsed.reason


def test_text_over_the_limit_is_refused_before_any_regex():
    huge = "1.001193" + "9" * 10_000_000  # 10 MB
    start = time.thread_time()  # this thread's CPU time: a regex on 10 MB burns it, a busy machine does not
    parsed = parse(huge)
    assert parsed.kind == "unknown"
    assert "exceeds the limit" in parsed.reason
    assert time.thread_time() - start < 5  # bounded: not a timing benchmark, a hang guard


def test_non_text_input_is_unknown():
    assert parse(b"1.001193").kind == "unknown"  # type: ignore[arg-type]
    assert parse(None).kind == "unknown"  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parse_never_raises_on_any_text(text):
    parsed = parse(text)
    assert parsed.kind in KINDS
    assert parsed.kind == "unknown" or parsed.reason is None or parsed.kind == "payment"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789.-ABHZ/:?=&%https", max_size=120))
def test_parse_never_raises_on_code_like_text(text):
    assert parse(text).kind in KINDS
    assert parse("https://dichvucong.gov.vn/x?ma=" + text).kind in KINDS
    assert parse("000201" + text).kind in KINDS
