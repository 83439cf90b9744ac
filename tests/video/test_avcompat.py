"""Every PyAV release pyproject allows (av>=17) reads what kvcap reads: the differences live in
`kvcap.video.avcompat`. `make test-compat` runs this on av 17 (Python 3.10, oldest)
and av 19 (3.12/3.13, newest); the main job on its own av."""

from __future__ import annotations

import pytest

from fixtures.video import gray_for_time, make_frame
from kvcap.video import probe, sample_frames
from kvcap.video.avcompat import av_version

PLACEHOLDER = b"kvcap-title-XYZW"
NOT_UTF8 = b"caf\xe9 \xff\xfe title!!"  # Latin-1 and stray bytes, same length as the placeholder


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_metadata_that_is_not_utf8_still_probes_and_samples(tmp_path, suffix):
    # av 17-18 raise UnicodeDecodeError on such a title unless told metadata_errors="ignore";
    # av 19 removed that argument (TypeError for every file when it was still passed).
    path = _clip_with_title(tmp_path / f"latin1{suffix}")  # PyAV writes UTF-8 only: patch the bytes
    data = path.read_bytes()
    assert data.count(PLACEHOLDER) == 1
    path.write_bytes(data.replace(PLACEHOLDER, NOT_UTF8))

    info = probe(path)
    assert (info.codec, round(info.duration, 1)) == ("h264", 2.0)
    sampled = sample_frames(path, num_frames=3, size=32)
    assert [abs(int(f.mean()) - gray_for_time(t)) <= 12 for f, t in zip(sampled.frames, sampled.times)] == [True] * 3


def _clip_with_title(path):
    import av

    with av.open(str(path), "w") as container:
        container.metadata["title"] = PLACEHOLDER.decode()
        stream = container.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for i in range(30):
            frame = av.VideoFrame.from_ndarray(make_frame(96, 64, i / 15), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_av_version_is_a_tuple_of_ints_at_least_the_lower_bound():
    version = av_version()
    assert all(isinstance(part, int) for part in version) and version >= (17, 0)
