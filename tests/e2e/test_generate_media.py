"""Media on the Generation page in Chromium: a lip sync is priced by the length of the audio
uploaded (measured by the server), a refused file says what is wrong, the result is an MP4 with
the audio in it, and N images come back as N files, each with its own preview and download."""

from __future__ import annotations

import io

import av
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.support.browser import JOB_TIMEOUT, balance, button, new_user_with_credits, open_generate
from tests.support.media_samples import tone_wav

pytestmark = pytest.mark.browser


@pytest.fixture
def files(tmp_path):
    face = tmp_path / "face.png"
    Image.new("RGB", (120, 120), (220, 180, 150)).save(face)
    voice = tmp_path / "voice.wav"
    voice.write_bytes(tone_wav(4.0))
    notes = tmp_path / "notes.txt"
    notes.write_text("not audio")
    return {"face": face, "voice": voice, "notes": notes}


def test_lip_sync_is_priced_by_the_uploaded_audio_and_returns_an_mp4_with_it(
    page, app_engine, files
):
    email = new_user_with_credits(app_engine, 100)
    open_generate(page, email)
    page.get_by_test_id("feature-lip_sync").click()
    form = page.get_by_test_id("form-lip_sync")
    expect(form.get_by_test_id("generate-note")).to_contain_text("Upload the audio to see the cost")
    # A text file: the picker refuses it and says why and what to choose.
    form.locator("[data-testid=upload-audio] input[type=file]").set_input_files(str(files["notes"]))
    expect(page.get_by_test_id("upload-audio-error")).to_have_text(
        "That file is the wrong type for the audio file. Choose an audio file (WAV, MP3, OGG, FLAC or M4A)."
    )
    form.locator("[data-testid=upload-source] input[type=file]").set_input_files(str(files["face"]))
    form.locator("[data-testid=upload-audio] input[type=file]").set_input_files(str(files["voice"]))
    expect(form.get_by_test_id("upload-audio-length")).to_have_text("4.0 s long")
    expect(form.get_by_test_id("media-duration")).to_contain_text("billed as 4 s")
    expect(form.get_by_test_id("generate-button")).to_have_text("Generate · 20 credits")  # 4 s × 5
    form.get_by_test_id("generate-button").click()
    expect(page.get_by_test_id("result-video")).to_be_visible(timeout=JOB_TIMEOUT)
    assert balance(app_engine, email) == 80
    href = page.get_by_test_id("result-download").first.get_attribute("href")
    response = page.request.get(href)
    assert response.status == 200 and response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.body())) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
        assert container.duration / av.time_base == pytest.approx(4.0, abs=0.15)


def test_two_images_are_two_files_each_with_a_preview_and_a_download(page, app_engine):
    email = new_user_with_credits(app_engine, 100)
    open_generate(page, email)
    page.get_by_test_id("count-select").select_option("2")
    page.get_by_test_id("prompt-input").fill("a red kite over green hills")
    expect(button(page)).to_have_text("Generate · 2 credits")
    button(page).click()
    expect(page.get_by_test_id("result-file")).to_have_count(2, timeout=JOB_TIMEOUT)
    links = page.get_by_test_id("result-file").get_by_test_id("result-download")
    bodies = []
    for i in range(2):
        response = page.request.get(links.nth(i).get_attribute("href"))
        assert response.status == 200 and response.headers["content-type"] == "image/png"
        assert response.headers["content-disposition"].startswith("attachment")
        with Image.open(io.BytesIO(response.body())) as img:
            assert img.size == (1024, 1024)
        bodies.append(response.body())
    assert bodies[0] != bodies[1]
    expect(
        page.get_by_test_id("history-row").first.get_by_test_id("history-download")
    ).to_have_count(2)
