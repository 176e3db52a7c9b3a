"""E-mail delivery against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import socket
from datetime import date
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

from sammachip.marts.rules import Officer
from sammachip.reports.mailer import MailSettings, send_reports
from sammachip.reports.officer_lists import OfficerReport


def report(officer_id: str, email: str) -> OfficerReport:
    entry = {
        "visit_order": 1,
        "title_th": "นางสมศรี ใจดี",
        "reasons": [{"rule_th": "เข้าร่วมอบรมน้อย"}],
        "due_date": date(2026, 2, 27),
        "overdue_days": 2,
    }
    officer = Officer(officer_id, "นางสาวพรทิพย์ ศรีสุข", ("341401",), email)
    return OfficerReport(officer, date(2026, 3, 1), today_items=[entry])


def decoded(raw: bytes, header: str) -> str:
    """A header as RFC 2047 reads it (the whitespace between encoded words is dropped; the
    modern parser keeps it inside display names)."""
    return str(make_header(decode_header(message_from_bytes(raw)[header])))


def test_each_officer_gets_their_files_with_a_thai_summary(
    smtp: tuple[Any, MailSettings], tmp_path: Path
) -> None:
    inbox, settings = smtp
    xlsx, page = tmp_path / "off01.xlsx", tmp_path / "off01.html"
    xlsx.write_bytes(b"PK\x03\x04 workbook")
    page.write_text("<!DOCTYPE html><html lang='th'>หน้า</html>", encoding="utf-8")
    result = send_reports(
        [(report("off01", "porntip@example.org"), [xlsx, page]), (report("off02", ""), [])],
        settings,
    )
    assert (result.sent, result.skipped, result.failed) == (["off01"], ["off02"], {})
    [(to, msg, raw)] = inbox.messages
    assert to == ["porntip@example.org"]
    assert msg["Subject"] == "รายการติดตามสัมมาชีพชุมชน 01/03/2569: วันนี้ 1 เลยกำหนด 1"
    assert decoded(raw, "To") == "นางสาวพรทิพย์ ศรีสุข <porntip@example.org>"
    body = msg.get_body(("plain",))
    assert (
        body is not None and "1. นางสมศรี ใจดี: เข้าร่วมอบรมน้อย ภายใน 27/02/2569" in body.get_content()
    )
    files = {a.get_filename(): a for a in msg.iter_attachments()}
    assert set(files) == {"off01.xlsx", "off01.html"}
    assert files["off01.xlsx"].get_content() == b"PK\x03\x04 workbook"
    assert files["off01.xlsx"].get_content_type().endswith("spreadsheetml.sheet")
    assert "หน้า" in files["off01.html"].get_content()


def test_an_unreachable_server_fails_softly() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = MailSettings(host="127.0.0.1", port=port, security="none", timeout=2)
    result = send_reports([(report("off01", "a@example.org"), [])], settings)
    assert result.sent == [] and "off01" in result.failed
