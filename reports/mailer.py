"""Optional e-mail delivery of each officer's morning list (stdlib smtplib/email).

One SMTP session for the whole run; one message per officer with an e-mail address, its
Thai summary in the body and the officer's files attached. A failure for one officer is
reported and the others are still sent: the files on disk are the deliverable, mail is a
convenience on top.
"""

from __future__ import annotations

import logging
import mimetypes
import smtplib
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path
from typing import Literal

from sammachip.reports.cells import be_date, display
from sammachip.reports.officer_lists import OfficerReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MailSettings:
    """Config `[mail]` (read by `flows.settings`); the password is resolved from the
    environment at the edge."""

    host: str
    port: int = 587
    sender: str = "sammachip@localhost"
    sender_name: str = "สัมมาชีพชุมชน (sammachip)"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    timeout: float = 30.0


@dataclass
class MailResult:
    sent: list[str] = field(default_factory=list)  # officer ids
    skipped: list[str] = field(default_factory=list)  # no e-mail address
    failed: dict[str, str] = field(default_factory=dict)  # officer id → error


def _body(report: OfficerReport) -> str:
    lines = [
        f"เรียน {report.officer.name}",
        "",
        f"รายการติดตามสัมมาชีพชุมชน ประจำวันที่ {be_date(report.today)}",
        f"- วันนี้ {len(report.today_items)} รายการ (เลยกำหนดทั้งหมด {report.overdue})",
        f"- ภายหลัง {len(report.later_items)} รายการ",
        f"- กลุ่มอาชีพ (ความพร้อม OTOP) {len(report.otop)} กลุ่ม",
        "",
    ]
    for e in report.today_items[:10]:
        why = e["reasons"][0]["rule_th"] if e.get("reasons") else ""
        title = display(e["title_th"])  # as the files show it
        lines.append(f"{e['visit_order']}. {title}: {why} ภายใน {be_date(e['due_date'])}")
    if len(report.today_items) > 10:
        lines.append(f"… และอีก {len(report.today_items) - 10} รายการ ในไฟล์แนบ")
    lines += ["", "ไฟล์แนบ: Excel และหน้าเว็บ (เปิดบนมือถือได้)", "-- sammachip"]
    return "\n".join(lines)


def compose(
    report: OfficerReport, attachments: Sequence[Path], settings: MailSettings
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = (
        f"รายการติดตามสัมมาชีพชุมชน {be_date(report.today)}: "
        f"วันนี้ {len(report.today_items)} เลยกำหนด {report.overdue}"
    )
    msg["From"] = formataddr((settings.sender_name, settings.sender))
    msg["To"] = formataddr((report.officer.name, report.officer.email))
    msg["Message-ID"] = make_msgid(domain=settings.sender.rsplit("@", 1)[-1])
    msg.set_content(_body(report))
    for path in attachments:
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        if maintype == "text":  # declared UTF-8, or mail clients show Thai as mojibake
            msg.add_attachment(
                path.read_text(encoding="utf-8"), subtype=subtype, filename=path.name
            )
        else:
            msg.add_attachment(
                path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name
            )
    return msg


def _connect(settings: MailSettings) -> smtplib.SMTP:
    if settings.security == "ssl":
        context = ssl.create_default_context()
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        if settings.security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
    if settings.username:
        smtp.login(settings.username, settings.password or "")
    return smtp


def send_reports(
    items: Iterable[tuple[OfficerReport, Sequence[Path]]], settings: MailSettings
) -> MailResult:
    """Mail each officer their files; officers without an address are skipped."""
    result = MailResult()
    todo = []
    for report, files in items:
        if report.officer.email:
            todo.append((report, files))
        else:
            result.skipped.append(report.officer_id)
    if not todo:
        return result
    try:
        smtp = _connect(settings)
    except (OSError, smtplib.SMTPException) as err:
        for report, _ in todo:
            result.failed[report.officer_id] = f"SMTP {settings.host}:{settings.port}: {err}"
        log.error("mail not sent: cannot connect to %s:%s: %s", settings.host, settings.port, err)
        return result
    with smtp:
        for report, files in todo:
            try:
                smtp.send_message(compose(report, files, settings))
                result.sent.append(report.officer_id)
            except (OSError, smtplib.SMTPException) as err:
                result.failed[report.officer_id] = str(err)
                log.error("mail to %s failed: %s", report.officer_id, err)
    return result
