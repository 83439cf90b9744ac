"""The review page in a real browser (Debian's chromium, headless, through selenium): it renders
from disk with no console errors, is not blank, its search box, filters and sorts work, and a
thumbnail as the browser shows it is the sampler's frame."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from fixtures.browser import console_errors, open_chromium, require_chromium
from review.conftest import assert_tiles_match, caption_job

from kvcap.records import read_jsonl
from kvcap.review import write_review
from kvcap.review.strips import TILE
from kvcap.video import sample_frames

CAPTIONS = ["바다 위로 해가 진다", "도시의 밤거리에 차가 달린다", "눈 덮인 산이 보인다", "들판에 바람이 분다"]


@pytest.fixture(scope="module")
def page(tmp_path_factory, video_zoo):
    """A reviewed job: 4 captioned clips (one suspect), 1 broken file, references for 3."""
    from caption.fake_captioner import FakeCaptioner
    from review.conftest import copy_clip

    require_chromium()
    root = tmp_path_factory.mktemp("review_page")
    videos = root / "videos"
    for i, clip in enumerate(["h264", "vfr", "korean", "h264"]):
        copy_clip(video_zoo.clips[clip], videos / f"clip{i}.mp4")
    copy_clip(video_zoo.broken["truncated"], videos / "broken.mp4")
    out = root / "out"
    caption_job([videos], out, FakeCaptioner(CAPTIONS), batch_size=1)
    ledger = out / "captions.jsonl"
    records = read_jsonl(ledger)
    for number, record in enumerate(r for r in records if r["status"] == "ok"):
        record["avg_logprob"] = -0.3 * (number + 1)
        record["suspect"] = "mean logprob below -1.0" if number == 3 else None
    ledger.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    manifest = videos / "refs.jsonl"
    manifest.write_text("".join(json.dumps({"id": f"r{i}", "video": f"clip{i}.mp4", "caption": ref}, ensure_ascii=False)
                                + "\n" for i, ref in enumerate(["바다 위로 붉은 해가 진다", "도시에 차가 없다", "산"])),
                        encoding="utf-8")
    from kvcap.config import ScoreConfig

    write_review(out, refs=manifest, score_cfg=ScoreConfig(tokenizer="whitespace"))
    driver = open_chromium(root / "profile")
    try:
        driver.get((out / "review.html").as_uri())
        yield driver, out, videos
    finally:
        driver.quit()


def visible_keys(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('article.v')).filter(r => !r.hidden).map(r => r.dataset.k)")


def test_renders_with_no_console_errors_and_is_not_blank(page):
    from PIL import Image

    driver, _, _ = page
    assert driver.title.startswith("kvcap review")
    assert len(visible_keys(driver)) == 5
    shot = np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("L"), dtype=np.float64)
    assert shot.std() > 20, f"screenshot looks blank (pixel std {shot.std():.1f})"
    assert len(np.unique(shot)) > 16
    assert console_errors(driver) == []


def test_search_box_filters_rows(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, _, _ = page
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys("밤거리")
    WebDriverWait(driver, 5).until(lambda d: len(visible_keys(d)) == 1)
    assert visible_keys(driver) == ["clip1.mp4"]
    assert driver.find_element(By.ID, "shown").text == "1 of 5 videos"
    box.clear()
    box.send_keys("붉은 해가")  # the reference text is searched too; words need not be adjacent
    WebDriverWait(driver, 5).until(lambda d: visible_keys(d) == ["clip0.mp4"])
    box.clear()
    box.send_keys(" ")
    WebDriverWait(driver, 5).until(lambda d: len(visible_keys(d)) == 5)
    assert console_errors(driver) == []


def test_filters_and_sorting(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver, _, _ = page
    errors, suspect = driver.find_element(By.ID, "errors"), driver.find_element(By.ID, "suspect")
    errors.click()
    assert visible_keys(driver) == ["broken.mp4"]
    errors.click()
    suspect.click()
    assert visible_keys(driver) == ["clip3.mp4"]
    suspect.click()
    order = Select(driver.find_element(By.ID, "sort"))
    values = driver.execute_script(
        "return Object.fromEntries(Array.from(document.querySelectorAll('article.v')).map(r => [r.dataset.k, r.dataset.m]))")
    scored = sorted((k for k, v in values.items() if v), key=lambda k: -float(values[k]))
    assert len(scored) == 3 and len({values[k] for k in scored}) == 3
    order.select_by_value("m:-1")
    assert visible_keys(driver)[:3] == scored  # highest METEOR first, unscored rows last
    order.select_by_value("lp:1")
    assert visible_keys(driver)[:4] == ["clip3.mp4", "clip2.mp4", "clip1.mp4", "clip0.mp4"]  # least confident first
    order.select_by_value("k")
    assert visible_keys(driver) == sorted(visible_keys(driver))


def test_a_thumbnail_as_shown_is_the_samplers_frames(page):
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, out, videos = page
    for key in ("clip0.mp4", "clip1.mp4"):
        img = driver.find_element(By.CSS_SELECTOR, f'article[data-k="{key}"] img.strip')
        assert img.get_attribute("loading") == "lazy"
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", img)  # not under the sticky header
        WebDriverWait(driver, 10).until(lambda d: d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", img))
        shown = np.asarray(Image.open(io.BytesIO(img.screenshot_as_png)).convert("RGB"))  # (TILE, N*TILE, 3)
        record = next(r for r in read_jsonl(out / "captions.jsonl") if r["video"] == key)
        frames = sample_frames(videos / key, len(record["frame_times"]), size=TILE).frames  # (N, TILE, TILE, 3)
        assert shown.shape == (TILE, len(frames) * TILE, 3), shown.shape
        assert_tiles_match(shown.reshape(TILE, -1, TILE, 3).transpose(1, 0, 2, 3), frames)
    assert console_errors(driver) == []


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_chromium_fails_under_ci_and_skips_elsewhere(monkeypatch, tmp_path, ci, outcome):
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium, no chromedriver
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="chromium"):
        require_chromium()
