"""How `--cluster ray` splits a job's videos into decode tasks (no Ray needed: arithmetic only)."""

import pytest

from kvcap.caption.cluster.stages import TASKS_PER_SLOT, VIDEOS_PER_TASK, decode_tasks


@pytest.mark.parametrize("videos, slots", [(1, 2), (3, 2), (8, 2), (256, 2), (256, 1), (10_000, 64), (10**6, 512)])
def test_every_video_is_in_a_task_of_at_most_the_cap_and_every_slot_has_work(videos, slots):
    tasks = decode_tasks(videos, slots)
    assert 1 <= tasks <= videos  # no empty task
    assert -(-videos // tasks) <= VIDEOS_PER_TASK  # the largest task holds at most the cap
    assert tasks >= min(videos, TASKS_PER_SLOT * slots)  # every decode slot can start at once


def test_a_short_job_keeps_one_video_a_task_and_a_long_one_groups_them():
    assert decode_tasks(6, 2) == 6  # few videos: one each, so a kill retries one video
    assert decode_tasks(256, 2) == 256 // VIDEOS_PER_TASK  # 16 tasks of 16 on two CPUs
    assert decode_tasks(256, 64) == TASKS_PER_SLOT * 64  # a wide cluster: one video a task again
