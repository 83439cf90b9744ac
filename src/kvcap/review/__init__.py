"""The review page of a caption job (`kvcap review OUT`): OUT/review.html, one row per video with
a JPEG strip of the frames the model was given (sampled again), its captions and times, error
reasons, confidence figures and, with a manifest, the reference and METEOR.

    write_review(out, refs=None, score_cfg=None, workers=None, backend="auto", say=None) -> ReviewReport

sources.py finds the records and their files, strips.py samples and writes the thumbnails,
references.py scores against a manifest, rows.py and page.py write the HTML, build.py joins them.
"""

from kvcap.review.build import ReviewReport, write_review
from kvcap.review.sources import ReviewError

__all__ = ["ReviewError", "ReviewReport", "write_review"]
