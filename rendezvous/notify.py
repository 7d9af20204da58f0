"""E-mail notice of a new abuse report, sent over SMTP in a worker thread."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import unicodedata
from email.message import EmailMessage

from .settings import Config
from .store import Report

log = logging.getLogger("rendezvous.notify")


def header_text(value: str, limit: int = 60) -> str:
    """Text a reporter wrote, made fit for a header line: every control character (a
    newline would end the header, or make EmailMessage refuse it) becomes a space."""
    return "".join(" " if unicodedata.category(c)[0] == "C" else c for c in value[:limit])


def _compose(config: Config, report: Report) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"[ChatOrbit] abuse report #{report.id}: {header_text(report.reason)}"
    msg["From"] = config.smtp_from
    msg["To"] = ", ".join(config.smtp_to)
    msg.set_content(
        f"A new abuse report was filed.\n\n"
        f"Report: #{report.id}\nToken: {report.token}\nReason: {report.reason}\n"
        f"Contact: {report.contact or '-'}\nFiled: {report.created_at.isoformat()}\n\n"
        f"Details:\n{report.details}\n"
    )
    return msg


def _send(config: Config, msg: EmailMessage) -> None:
    with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=10) as smtp:
        if config.smtp_starttls:
            smtp.starttls()
        if config.smtp_username:
            smtp.login(config.smtp_username, config.smtp_password)
        smtp.send_message(msg)


async def notify_report(config: Config, report: Report) -> bool:
    """Mail the report to the configured recipients; True if the server took it."""
    if not config.smtp_host or not config.smtp_to:
        return False
    try:
        await asyncio.to_thread(_send, config, _compose(config, report))
    except (OSError, ValueError, smtplib.SMTPException) as exc:
        log.warning(
            "report notice not sent", extra={"fields": {"report": report.id, "error": str(exc)}}
        )
        return False
    log.info("report notice sent", extra={"fields": {"report": report.id}})
    return True
