"""The procedure catalog: validated imports (all or nothing), lookups by code, variant and uuid."""

from __future__ import annotations

import json

import pytest

from edge.qr import catalog
from edge.qr.errors import CatalogError

UUID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


def write_csv(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_sample_catalog_holds_real_codes_with_vietnamese_names(store):
    summary = catalog.import_file(store, catalog.SAMPLE)
    assert summary["added"] == summary["total"] >= 7
    birth = catalog.lookup(store, "1.001193")
    assert birth["name"] == "Đăng ký khai sinh"
    assert birth["queue_service"]
    assert isinstance(birth["papers"], list) and birth["papers"]
    assert catalog.lookup(store, "2.000815")["name"] == "Chứng thực bản sao từ bản chính"


def test_import_writes_an_event_and_an_audit_record(store):
    catalog.import_file(store, catalog.SAMPLE, actor="tester")
    events = [json.loads(r["payload"]) for r in store.query("SELECT payload FROM outbox WHERE topic = 'qr/event'")]
    assert [e["type"] for e in events] == ["catalog_imported"]
    audit = store.query("SELECT actor, action FROM audit")
    assert [(r["actor"], r["action"]) for r in audit] == [("tester", "qr_catalog_import")]


@pytest.mark.parametrize("code, matched", [
    ("1.011441", "1.011441"),
    ("1.011441.000.00.00.H38", "1.011441.000.00.00.H38"),  # the province's own version
    ("1.011441.000.00.00.H38.02", "1.011441.000.00.00.H38"),  # its online variant
    ("1.011441.000.00.00.H26", "1.011441"),  # another province: the national entry
    ("1.001193.01", "1.001193"),
])
def test_lookup_falls_back_from_variants(store, code, matched):
    catalog.import_file(store, catalog.SAMPLE)
    assert catalog.lookup(store, code)["matched"] == matched


@pytest.mark.parametrize("code", ["9.999999", "", "x" * 65, "1.00119", None, 12])
def test_lookup_of_unknown_codes(store, code):
    catalog.import_file(store, catalog.SAMPLE)
    assert catalog.lookup(store, code) is None


def test_json_import_with_uuid_and_lookup_by_uuid(store, tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"procedures": [
        {"code": "1.001193", "name": "Đăng ký khai sinh", "papers": ["Tờ khai"], "processing_days": 0,
         "queue_service": "hotich", "uuid": UUID.upper()},
    ]}, ensure_ascii=False), encoding="utf-8")
    catalog.import_file(store, path)
    assert catalog.lookup(store, UUID)["code"] == "1.001193"
    assert catalog.lookup(store, UUID.upper())["code"] == "1.001193"


def test_every_problem_is_reported_and_nothing_is_written(store, tmp_path):
    path = write_csv(tmp_path / "bad.csv",
                     "code,name,level,processing_days,queue_service,uuid\n"
                     "1.001193,Đăng ký khai sinh,xã,0,hotich,\n"
                     "1.0011934,Sai mã,xã,0,hotich,\n"
                     "2.000815,,xã,0,chungthuc,\n"
                     "1.000894,Kết hôn,quận,abc,Hộ Tịch,not-a-uuid\n"
                     "1.001193,Trùng,xã,0,hotich,\n")
    with pytest.raises(CatalogError) as caught:
        catalog.import_file(store, path)
    text = "\n".join(caught.value.problems)
    assert "row 2: code: found '1.0011934'" in text
    assert "row 3: name: missing" in text
    assert "row 4: level: found 'quận'" in text
    assert "row 4: processing_days: found 'abc'" in text
    assert "row 4: queue_service" in text
    assert "row 4: uuid" in text
    assert "row 5: code: '1.001193' already on row 1" in text
    assert catalog.count(store) == 0


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"code,name,colour\n1.001193,X,red\n", "unknown column"),
    (b"code,name\n1.001193,X,extra\n", "more fields than columns"),
    (b"code,name\n", "no procedures"),
    (b"code,name\n1.001193,\xff\xfe\n", "not UTF-8"),
])
def test_broken_csv_files(store, tmp_path, content, message):
    path = tmp_path / "c.csv"
    path.write_bytes(content)
    with pytest.raises(CatalogError, match=message):
        catalog.import_file(store, path)


@pytest.mark.parametrize("content, message", [
    ("{", "not valid JSON"),
    ('{"a": 1}', "expected a JSON list"),
    ('[1, "x"]', "expected an object"),
    ('[{"code": "1.001193", "name": 5}]', "expected text"),
    ('[{"code": "1.001193", "name": "X", "papers": "a;b", "processing_days": true}]', "processing_days"),
    ('[{"code": "1.001193", "name": "X", "papers": [1]}]', "papers"),
])
def test_broken_json_files(store, tmp_path, content, message):
    path = tmp_path / "c.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CatalogError, match=message):
        catalog.import_file(store, path)


def test_missing_and_oversized_files(store, tmp_path, monkeypatch):
    with pytest.raises(CatalogError, match="no such file"):
        catalog.import_file(store, tmp_path / "none.csv")
    monkeypatch.setattr(catalog, "MAX_FILE_BYTES", 10)
    with pytest.raises(CatalogError, match="more than"):
        catalog.import_file(store, catalog.SAMPLE)


def test_reimport_updates_and_replace_removes(store, tmp_path):
    catalog.import_file(store, catalog.SAMPLE)
    path = write_csv(tmp_path / "one.csv", "code,name,queue_service\n1.001193,Đăng ký khai sinh (mới),hotich\n")
    summary = catalog.import_file(store, path)
    assert (summary["added"], summary["updated"]) == (0, 1)
    assert catalog.lookup(store, "1.001193")["name"] == "Đăng ký khai sinh (mới)"
    assert catalog.count(store) > 1
    summary = catalog.import_file(store, path, replace=True)
    assert summary["total"] == 1 and summary["removed"] >= 6
    assert catalog.lookup(store, "2.000815") is None


def test_uuid_moving_to_another_code(store, tmp_path):
    first = write_csv(tmp_path / "a.csv", f"code,name,uuid\n1.001193,A,{UUID}\n")
    second = write_csv(tmp_path / "b.csv", f"code,name,uuid\n1.000894,B,{UUID}\n")
    catalog.import_file(store, first)
    catalog.import_file(store, second)
    assert catalog.lookup(store, UUID)["code"] == "1.000894"
