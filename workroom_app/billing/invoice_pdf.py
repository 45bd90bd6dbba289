"""Render an invoice to PDF with fpdf2.

A pure function of the invoice row, its lines and the bill-to email: invoices
are never edited after they are written, so the PDF can be drawn whenever it
is asked for (download, receipt email) and is always the same document.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from fpdf import FPDF

from workroom_app.billing import formatting
from workroom_app.billing.payments.cards import BRAND_LABELS
from workroom_app.billing.periods import as_utc
from workroom_app.models import Invoice, InvoiceLine

COMPANY_NAME = "Workroom"
COMPANY_LINES = ("Workroom Billing", "billing@workroom.test")

_KIND_LABELS = {
    "activation": "Subscription",
    "renewal": "Renewal",
    "upgrade": "Upgrade",
    "downgrade": "Plan change",
}


# The one money format (billing/formatting.py), under the name this module's callers use.
money = formatting.format_money


def _date(value: datetime | None, tz: ZoneInfo | None = None) -> str:  # None: UTC
    return formatting.format_date(value, tz) if value else "-"


def _latin1(text: str) -> str:
    # The core PDF fonts are Latin-1; an email or card name outside it must not
    # stop an invoice from rendering.
    return text.encode("latin-1", "replace").decode("latin-1")


def render_invoice(
    invoice: Invoice,
    lines: Sequence[InvoiceLine],
    bill_to_email: str,
    tz: ZoneInfo | None = None,
    refunded_cents: int = 0,
) -> bytes:
    """`tz`: the account's time zone (billing/formatting.py); dates are shown in it."""
    pdf = FPDF(format="A4")
    pdf.set_title(f"Invoice {invoice.number}")
    pdf.set_author(COMPANY_NAME)
    pdf.set_creation_date(as_utc(invoice.created_at))
    pdf.add_page()
    width = pdf.epw

    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(width / 2, 10, COMPANY_NAME)
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(width / 2, 10, "INVOICE", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for line in COMPANY_LINES:
        pdf.cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)

    def field(label: str, value: str) -> None:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(40, 6, label)
        pdf.set_font("Helvetica", "", 10)
        pdf.cell(0, 6, _latin1(value), new_x="LMARGIN", new_y="NEXT")

    field("Invoice number", invoice.number or "-")
    field("Date", _date(invoice.created_at, tz))
    field("Bill to", bill_to_email)
    if refunded_cents > 0 or invoice.status == "refunded":
        # Refunds come after the invoice (billing/invoice_refunds.py); the
        # document says so rather than changing its amounts.
        status = (
            "Refunded"
            if refunded_cents >= invoice.amount_cents or invoice.status == "refunded"
            else "Partly refunded"
        )
        field("Status", status)
        if refunded_cents > 0:
            field("Refunded", money(refunded_cents, invoice.currency))
    else:
        field("Status", invoice.status.capitalize())
    if invoice.period_start and invoice.period_end:
        field("Period", f"{_date(invoice.period_start, tz)} - {_date(invoice.period_end, tz)}")
    if invoice.card_brand and invoice.card_last4:
        brand = BRAND_LABELS.get(invoice.card_brand, invoice.card_brand.title())
        field("Card", f"{brand} ending in {invoice.card_last4}")
    if invoice.failure_reason:
        field("Payment failed", invoice.failure_reason)
    pdf.ln(6)

    pdf.set_font("Helvetica", "B", 10)
    pdf.set_fill_color(235, 235, 235)
    pdf.cell(width * 0.6, 8, "Description", border="B", fill=True)
    pdf.cell(width * 0.1, 8, "Qty", border="B", fill=True, align="R")
    pdf.cell(
        width * 0.3, 8, "Amount", border="B", fill=True, align="R", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font("Helvetica", "", 10)
    for item in lines:
        pdf.cell(width * 0.6, 7, _latin1(item.description))
        pdf.cell(width * 0.1, 7, str(item.quantity), align="R")
        pdf.cell(
            width * 0.3,
            7,
            money(item.amount_cents * item.quantity, invoice.currency),
            align="R",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(width * 0.7, 8, "Total", border="T")
    pdf.cell(
        width * 0.3,
        8,
        money(invoice.amount_cents, invoice.currency),
        border="T",
        align="R",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(8)
    pdf.set_font("Helvetica", "", 9)
    kind = _KIND_LABELS.get(invoice.kind, invoice.kind.capitalize())
    pdf.multi_cell(
        0,
        5,
        f"{kind} payment. Amounts in {invoice.currency.upper()}. Dates in {formatting.zone(tz).key}. "
        "Thank you for using Workroom.",
    )
    return bytes(pdf.output())
