"""The card form shared by Checkout and "Replace card" on the Subscription page.

An uncontrolled HTML form: the card number is formatted and its brand shown
as it is typed, entirely in the browser (no round trip per keystroke, and the
number never sits in server-side page state); the server gets the raw strings
once, on submit, and checks everything itself.
"""

from __future__ import annotations

import reflex as rx

# Installed once per page load. Mirrors payments/cards.detect_brand's prefixes
# for display only: the server decides the brand again.
_FORMAT_JS = r"""
(() => {
  if (window.__workroomCardFormat) return;
  window.__workroomCardFormat = true;
  const between = (s, n, lo, hi) => s.length >= n && +s.slice(0, n) >= lo && +s.slice(0, n) <= hi;
  const brandOf = (d) => {
    if (!d) return "";
    if (d[0] === "4") return "Visa";
    if (between(d, 2, 51, 55) || between(d, 4, 2221, 2720)) return "Mastercard";
    if (/^3[47]/.test(d)) return "American Express";
    if (between(d, 4, 3528, 3589)) return "JCB";
    if (/^(36|38|39|3095)/.test(d) || between(d, 3, 300, 305)) return "Diners Club";
    if (/^(6011|65)/.test(d) || between(d, 3, 644, 649)) return "Discover";
    if (/^(62|81)/.test(d)) return "UnionPay";
    return "";
  };
  const groups = (d, brand) => {
    const sizes = brand === "American Express" ? [4, 6, 5] : brand === "Diners Club" && d.length === 14 ? [4, 6, 4] : [4, 4, 4, 4, 3];
    const out = []; let i = 0;
    for (const n of sizes) { if (i >= d.length) break; out.push(d.slice(i, i + n)); i += n; }
    return out.join(" ");
  };
  document.addEventListener("input", (ev) => {
    const el = ev.target;
    if (!(el instanceof HTMLInputElement)) return;
    const field = el.getAttribute("data-card-field");
    if (!field) return;
    const form = el.closest("form");
    if (field === "number") {
      const d = el.value.replace(/\D/g, "").slice(0, 19);
      const brand = brandOf(d);
      el.value = groups(d, brand);
      const tag = form && form.querySelector("[data-card-brand]");
      if (tag) { tag.textContent = brand; tag.style.visibility = brand ? "visible" : "hidden"; }
      const cvc = form && form.querySelector("[data-card-field=cvc]");
      if (cvc) cvc.setAttribute("placeholder", brand === "American Express" ? "1234" : "123");
    } else if (field === "expiry") {
      let d = el.value.replace(/\D/g, "").slice(0, 4);
      if (d.length === 1 && d > "1") d = "0" + d;
      const typedSlash = ev.inputType !== "deleteContentBackward";
      el.value = d.length > 2 || (d.length === 2 && typedSlash) ? d.slice(0, 2) + "/" + d.slice(2) : d;
    } else if (field === "cvc") {
      el.value = el.value.replace(/\D/g, "").slice(0, 4);
    }
  }, true);
})();
"""


def install_card_formatting() -> rx.event.EventSpec:
    return rx.call_script(_FORMAT_JS)


def _field(label: str, control: rx.Component, error, testid: str) -> rx.Component:  # noqa: ANN001
    return rx.vstack(
        rx.text(label, as_="label", size="2", weight="medium"),
        control,
        rx.cond(
            error != "",
            rx.text(
                error, size="2", color_scheme="red", data_testid=f"{testid}-error", role="alert"
            ),
        ),
        spacing="1",
        width="100%",
    )


def card_form(
    *,
    on_submit,  # noqa: ANN001
    busy,  # noqa: ANN001
    submit_label,  # noqa: ANN001
    number_error,  # noqa: ANN001
    expiry_error,  # noqa: ANN001
    cvc_error,  # noqa: ANN001
    name_error,  # noqa: ANN001
    form_error,  # noqa: ANN001
    testid: str = "card-form",
    extra: rx.Component | None = None,
) -> rx.Component:
    number = rx.box(
        rx.input(
            name="number",
            placeholder="1234 1234 1234 1234",
            input_mode="numeric",
            auto_complete="cc-number",
            max_length=23,
            size="3",
            width="100%",
            aria_label="Card number",
            custom_attrs={"data-card-field": "number"},
            data_testid="card-number",
        ),
        rx.el.span(
            custom_attrs={"data-card-brand": ""},
            data_testid="card-brand",
            style={
                "position": "absolute",
                "right": "0.6rem",
                "top": "50%",
                "transform": "translateY(-50%)",
                "fontSize": "12px",
                "fontWeight": 600,
                "padding": "2px 8px",
                "borderRadius": "9999px",
                "background": "var(--accent-3)",
                "color": "var(--accent-11)",
                "visibility": "hidden",
                "pointerEvents": "none",
            },
        ),
        position="relative",
        width="100%",
    )
    return rx.form(
        rx.vstack(
            _field("Card number", number, number_error, "card-number"),
            rx.grid(
                _field(
                    "Expiry (MM/YY)",
                    rx.input(
                        name="expiry",
                        placeholder="MM/YY",
                        input_mode="numeric",
                        auto_complete="cc-exp",
                        max_length=7,
                        size="3",
                        width="100%",
                        aria_label="Expiry date, MM/YY",
                        custom_attrs={"data-card-field": "expiry"},
                        data_testid="card-expiry",
                    ),
                    expiry_error,
                    "card-expiry",
                ),
                _field(
                    "CVC",
                    rx.input(
                        name="cvc",
                        placeholder="123",
                        input_mode="numeric",
                        auto_complete="cc-csc",
                        max_length=4,
                        size="3",
                        width="100%",
                        aria_label="Security code (CVC)",
                        custom_attrs={"data-card-field": "cvc"},
                        data_testid="card-cvc",
                    ),
                    cvc_error,
                    "card-cvc",
                ),
                columns="2",
                spacing="3",
                width="100%",
            ),
            _field(
                "Name on card",
                rx.input(
                    name="name",
                    placeholder="Jane Doe",
                    auto_complete="cc-name",
                    max_length=100,
                    size="3",
                    width="100%",
                    aria_label="Name on card",
                    data_testid="card-name",
                ),
                name_error,
                "card-name",
            ),
            rx.cond(
                form_error != "",
                rx.callout(
                    form_error,
                    icon="circle-alert",
                    color_scheme="red",
                    width="100%",
                    data_testid="card-form-error",
                    role="alert",
                ),
            ),
            extra if extra is not None else rx.fragment(),
            rx.button(
                rx.icon("lock", size=16),
                submit_label,
                type="submit",
                size="3",
                width="100%",
                loading=busy,
                disabled=busy,
                data_testid="card-submit",
            ),
            spacing="4",
            width="100%",
        ),
        on_submit=on_submit,
        on_mount=install_card_formatting(),
        reset_on_submit=False,
        width="100%",
        data_testid=testid,
    )
