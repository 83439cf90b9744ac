"""docs/review.png: a screenshot of a real review page (the README shows it).

    python scripts/review_screenshot.py [--out docs/review.png]

Draws 8 synthetic scenes (`kvcap data synth`), captions them with the demo checkpoint
(`kvcap caption --review`), writes the page again with the scenes' references and METEOR
(`kvcap review --refs`), and photographs it in headless chromium (Debian's chromium and
chromium-driver, through selenium, as the browser tests do). Korean text needs a Korean font on
the machine (Debian: fonts-nanum or fonts-noto-cjk).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def kvcap(*args) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "kvcap.cli", *map(str, args)], env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "review.png")
    args = parser.parse_args()
    from fixtures.browser import open_chromium

    work = Path(tempfile.mkdtemp(prefix="kvcap-review-shot-"))
    kvcap("data", "synth", "--out", work / "synth", "--count", "8", "--seed", 2026, "--quiet")
    (work / "synth" / "clips" / "broken.mp4").write_bytes(b"not a video")  # an error row
    out = work / "out"
    subprocess.run([sys.executable, "-m", "kvcap.cli", "caption", work / "synth" / "clips", "--checkpoint", "demo",
                    "-o", out, "-q", "--review"],
                   env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, check=False)  # exit 1: broken.mp4
    kvcap("review", out, "--refs", work / "synth" / "manifest.jsonl")
    driver = open_chromium(work / "profile")
    try:
        driver.set_window_size(1100, 860)
        driver.get((out / "review.html").as_uri())
        driver.execute_script("document.getElementById('sort').value = 'm:1';"
                              "document.getElementById('sort').dispatchEvent(new Event('change'))")
        driver.execute_script("document.querySelectorAll('img.strip').forEach(i => i.loading = 'eager')")
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(driver, 30).until(lambda d: d.execute_script(
            "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
    finally:
        driver.quit()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
