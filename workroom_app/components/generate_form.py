"""The Generate form: one tab per feature, each a plain HTML form.

The option lists and the Generate button's text are filled in by assets/generate.js from the
catalog (the cost has to follow every control within a frame, which a server round trip cannot
promise), so the selects are rendered empty here and carry `data-param` for the script. The
server state only receives the submitted field values (GenerateState.submit) and the uploads.
"""

from __future__ import annotations

import reflex as rx

from workroom_app.billing import catalog
from workroom_app.generation.uploads import MAX_BYTES
from workroom_app.routes import PLANS_ROUTE
from workroom_app.state.generate import GenerateState
from workroom_app.state.session import SessionState

# The tab icon of each feature; the features and their labels are the catalog's.
FEATURE_ICONS: dict[str, str] = {
    "image": "image",
    "video": "clapperboard",
    "voiceover": "audio-lines",
    "face_swap": "scan-face",
    "lip_sync": "mic-vocal",
}
FEATURE_TABS: list[tuple[str, str, str]] = [
    (key, label, FEATURE_ICONS.get(key, "sparkles"))
    for key, label in catalog.feature_labels().items()
]
# Which controls each feature shows (the script hides those a chosen model does not use).
FEATURE_PARAMS: dict[str, tuple[str, ...]] = {
    "image": ("model", "resolution", "count"),
    "video": ("model", "resolution", "duration"),
    "voiceover": ("model",),
    # No duration menu: these last as long as the uploaded media (TIMED_UPLOADS), measured by the server.
    "face_swap": ("model", "resolution"),
    "lip_sync": ("model", "resolution"),
}
# The upload whose length is the duration (generation/uploads.py TIMED_ROLES), and for which
# model (face swap: only a video swap; "" = every model).
TIMED_UPLOADS: dict[str, tuple[str, str]] = {
    "lip_sync": ("audio", ""),
    "face_swap": ("target", "video"),
}
PARAM_LABELS = {
    "model": "Model",
    "resolution": "Resolution",
    "duration": "Duration",
    "count": "Images",
}
PROMPT_FEATURES = ("image", "video")
# role -> (label, accepted MIME types for the file picker, byte limit, handler)
IMAGE_TYPES = {
    "image/png": [".png"],
    "image/jpeg": [".jpg", ".jpeg"],
    "image/webp": [".webp"],
    "image/gif": [".gif"],
}
VIDEO_TYPES = {
    "video/mp4": [".mp4"],
    "video/quicktime": [".mov"],
    "video/webm": [".webm"],
    "image/gif": [".gif"],
}
AUDIO_TYPES = {
    "audio/wav": [".wav"],
    "audio/x-wav": [".wav"],
    "audio/mpeg": [".mp3"],
    "audio/ogg": [".ogg"],
    "audio/flac": [".flac"],
    "audio/mp4": [".m4a"],
    "audio/x-m4a": [".m4a"],
}
UPLOADS: dict[str, list[tuple[str, str, str, dict, int]]] = {
    "face_swap": [
        (
            "face",
            "Source face",
            "An image of the face to use (PNG, JPEG, WebP; up to 10 MB)",
            IMAGE_TYPES,
            MAX_BYTES["image"],
        ),
        (
            "target",
            "Target image or video",
            "The picture or clip to put the face into (up to 50 MB)",
            {**IMAGE_TYPES, **VIDEO_TYPES},
            MAX_BYTES["video"],
        ),
    ],
    "lip_sync": [
        (
            "source",
            "Video or image",
            "The face to animate: MP4, MOV, WebM or an image (up to 50 MB)",
            {**IMAGE_TYPES, **VIDEO_TYPES},
            MAX_BYTES["video"],
        ),
        (
            "audio",
            "Audio",
            "The speech to sync to: WAV, MP3, OGG, FLAC or M4A (up to 20 MB)",
            AUDIO_TYPES,
            MAX_BYTES["audio"],
        ),
    ],
}
UPLOAD_HANDLERS = {
    "face": GenerateState.upload_face,
    "target": GenerateState.upload_target,
    "source": GenerateState.upload_source,
    "audio": GenerateState.upload_audio,
}
REJECTED_HANDLERS = {
    "face": GenerateState.rejected_face,
    "target": GenerateState.rejected_target,
    "source": GenerateState.rejected_source,
    "audio": GenerateState.rejected_audio,
}

_FIELD_STYLE = {
    "width": "100%",
    "padding": "0.5rem 0.65rem",
    "border_radius": "var(--radius-2)",
    "border": f"1px solid {rx.color('gray', 7)}",
    "background": rx.color("gray", 1),
    "color": rx.color("gray", 12),
    "font_size": "0.95rem",
    "_focus": {"outline": f"2px solid {rx.color('accent', 8)}", "outline_offset": "1px"},
}


def context_probe() -> rx.Component:
    """What generate.js needs from the server state, as attributes it watches."""
    return rx.el.div(
        id="generate-context",
        data_plan=SessionState.plan_key,
        data_balance=SessionState.balance,
        data_submit_seq=GenerateState.submit_seq,
        display="none",
    )


def _select(param: str) -> rx.Component:
    return rx.el.div(
        rx.el.label(
            rx.text(PARAM_LABELS[param], size="2", weight="medium", color_scheme="gray"),
            rx.el.select(
                name=param,
                data_param=param,
                data_testid=f"{param}-select",
                aria_label=PARAM_LABELS[param],
                **_FIELD_STYLE,
            ),
            display="flex",
            flex_direction="column",
            gap="0.35rem",
        ),
        data_field=param,
        flex="1 1 10rem",
        min_width="9rem",
    )


def _prompt(feature: str) -> rx.Component:
    return rx.el.label(
        rx.text("Prompt", size="2", weight="medium", color_scheme="gray"),
        rx.el.textarea(
            name="prompt",
            data_param="prompt",
            data_testid="prompt-input",
            placeholder="Describe what to generate…"
            if feature == "image"
            else "Describe the scene and the motion…",
            rows=3,
            max_length=2000,
            resize="vertical",
            **_FIELD_STYLE,
        ),
        data_field="prompt",
        display="flex",
        flex_direction="column",
        gap="0.35rem",
        width="100%",
    )


def _voiceover_text() -> rx.Component:
    return rx.el.label(
        rx.hstack(
            rx.text("Text to read out", size="2", weight="medium", color_scheme="gray"),
            rx.el.span(
                data_role="char-count",
                data_testid="char-count",
                font_size="0.8rem",
                color=rx.color("gray", 10),
            ),
            justify="between",
            width="100%",
        ),
        rx.el.textarea(
            name="text",
            data_param="text",
            data_testid="prompt-input",
            placeholder="Type or paste the script (up to 5,000 characters)…",
            rows=5,
            resize="vertical",
            **_FIELD_STYLE,
        ),
        data_field="text",
        display="flex",
        flex_direction="column",
        gap="0.35rem",
        width="100%",
    )


def _upload_zone(role: str, label: str, hint: str, accept: dict, limit: int) -> rx.Component:
    upload_id = f"upload-{role}"
    view = GenerateState.uploads[role]
    has = GenerateState.uploads.contains(role)
    return rx.vstack(
        rx.text(label, size="2", weight="medium", color_scheme="gray"),
        rx.upload(
            rx.vstack(
                rx.cond(
                    has,
                    rx.hstack(
                        rx.icon("file-check", size=18, color=rx.color("green", 10)),
                        rx.text(view.name, size="2", weight="medium", trim="both"),
                        rx.text(view.size_text, size="1", color_scheme="gray"),
                        rx.cond(
                            view.length_text != "",
                            rx.text(
                                view.length_text,
                                " long",
                                size="1",
                                color_scheme="gray",
                                data_testid=f"upload-{role}-length",
                            ),
                        ),
                        align="center",
                        spacing="2",
                        data_testid=f"upload-{role}-name",
                    ),
                    rx.hstack(
                        rx.icon("upload", size=18, color=rx.color("gray", 10)),
                        rx.text("Drop a file or click to choose", size="2"),
                        align="center",
                        spacing="2",
                    ),
                ),
                rx.text(hint, size="1", color_scheme="gray"),
                spacing="1",
                align="center",
            ),
            id=upload_id,
            accept=accept,
            max_files=1,
            multiple=False,
            max_size=limit,
            on_drop=UPLOAD_HANDLERS[role],
            on_drop_rejected=REJECTED_HANDLERS[role],
            border=f"1px dashed {rx.color('gray', 8)}",
            border_radius="var(--radius-3)",
            padding="1rem",
            width="100%",
            cursor="pointer",
            background=rx.color("gray", 2),
            data_testid=f"upload-{role}",
        ),
        rx.cond(
            GenerateState.upload_errors.contains(role),
            rx.text(
                GenerateState.upload_errors[role],
                color_scheme="red",
                size="2",
                data_testid=f"upload-{role}-error",
            ),
        ),
        spacing="1",
        flex="1 1 16rem",
        min_width="0",
    )


def _media_length(feature: str) -> rx.Component:
    """The duration of a feature priced by an upload's length: what generate.js prices with
    (data-media-seconds, the server's measure) and what the user reads."""
    role, model = TIMED_UPLOADS[feature]
    view = GenerateState.uploads[role]
    has = GenerateState.uploads.contains(role)
    what = "audio" if role == "audio" else "target video"
    return rx.el.p(
        rx.cond(
            has & (view.seconds > 0),
            rx.fragment(
                "Duration: ",
                view.length_text,
                f" (the {what}'s length), billed as ",
                view.seconds,
                " s",
            ),
            f"Duration: the length of the {what} you upload.",
        ),
        data_media_seconds=rx.cond(has & (view.seconds > 0), view.seconds.to_string(), ""),
        data_media_model=model,
        data_media_what=what,
        data_testid="media-duration",
        font_size="0.85rem",
        color=rx.color("gray", 11),
        margin="0",
    )


def _feature_form(feature: str) -> rx.Component:
    params = FEATURE_PARAMS[feature]
    body: list[rx.Component] = []
    if feature in UPLOADS:
        body.append(
            rx.flex(
                *[_upload_zone(*spec) for spec in UPLOADS[feature]],
                gap="1rem",
                wrap="wrap",
                width="100%",
            )
        )
    if feature in TIMED_UPLOADS:
        body.append(_media_length(feature))
    body.append(rx.flex(*[_select(p) for p in params], gap="1rem", wrap="wrap", width="100%"))
    if feature in PROMPT_FEATURES:
        body.append(_prompt(feature))
    if feature == "voiceover":
        body.append(_voiceover_text())
    body.append(
        rx.el.p(
            data_role="locks",
            data_testid="locked-note",
            font_size="0.85rem",
            color=rx.color("gray", 11),
            margin="0",
            hidden=True,
        )
    )
    body.append(
        rx.flex(
            rx.el.button(
                # The cost: generate.js rewrites it as options change; screen
                # readers announce each new cost.
                rx.el.span(data_role="label", aria_live="polite", aria_atomic="true"),
                type="submit",
                data_testid="generate-button",
                padding="0.65rem 1.25rem",
                border_radius="var(--radius-3)",
                border="none",
                background=rx.color("accent", 9),
                color="white",
                font_weight="600",
                font_size="1rem",
                cursor="pointer",
                min_height="2.75rem",
                _disabled={"background": rx.color("gray", 8), "cursor": "not-allowed"},
                _hover={"background": rx.color("accent", 10)},
                # Before the script has priced the form, say what the button does.
                css={"& span:empty::before": {"content": '"Generate"'}},
            ),
            rx.el.span(
                rx.link(
                    rx.button(
                        rx.icon("sparkles", size=16),
                        "Upgrade",
                        variant="soft",
                        size="3",
                        type="button",
                    ),
                    href=PLANS_ROUTE,
                    data_testid="generate-upgrade",
                ),
                data_role="upgrade",
                hidden=True,
            ),
            gap="0.75rem",
            align="center",
            wrap="wrap",
        )
    )
    body.append(
        rx.el.p(
            data_role="note",
            data_testid="generate-note",
            font_size="0.9rem",
            color=rx.color("amber", 11),
            margin="0",
            hidden=True,
        )
    )
    return rx.el.form(
        rx.el.input(type="hidden", name="feature", default_value=feature),
        rx.el.input(type="hidden", name="request_id", default_value=""),
        rx.el.input(type="hidden", name="shown_cost", default_value=""),
        rx.vstack(*body, spacing="4", width="100%"),
        on_submit=GenerateState.submit,
        reset_on_submit=False,
        data_generate_form="1",
        data_feature=feature,
        data_testid=f"form-{feature}",
        width="100%",
    )


def error_callout() -> rx.Component:
    return rx.cond(
        GenerateState.error != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("circle-alert")),
            rx.callout.text(
                rx.text(GenerateState.error, data_testid="generate-error"),
                rx.cond(
                    GenerateState.error_upgrade,
                    rx.link(" Upgrade your plan", href=PLANS_ROUTE, weight="bold"),
                ),
            ),
            color_scheme="red",
            role="alert",
            width="100%",
        ),
    )


def generate_form() -> rx.Component:
    return rx.card(
        rx.tabs.root(
            rx.tabs.list(
                *[
                    rx.tabs.trigger(
                        rx.hstack(
                            rx.icon(icon, size=16), rx.text(label), spacing="2", align="center"
                        ),
                        value=key,
                        data_testid=f"feature-{key}",
                    )
                    for key, label, icon in FEATURE_TABS
                ],
                size="2",
                # Wrap onto a second row on phones: a scrolling tab row hides
                # Face swap and Lip sync from anyone who does not guess it scrolls.
                flex_wrap="wrap",
            ),
            *[
                rx.tabs.content(_feature_form(key), value=key, padding_top="1.25rem")
                for key, _label, _icon in FEATURE_TABS
            ],
            default_value="image",
            on_change=GenerateState.dismiss_error,
            width="100%",
        ),
        error_callout(),
        context_probe(),
        rx.script(src="/quote.js", async_=True),
        rx.script(src="/generate.js", async_=True),
        size="3",
        width="100%",
    )
