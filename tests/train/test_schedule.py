"""The step schedule counts the batches that `epoch_order` hands each rank without drawing the
permutation: the two must agree for every clip count, batch size and world size."""

from __future__ import annotations

import pytest

from kvcap.trainer.features import epoch_order
from kvcap.trainer.steps import plan_schedule


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("batch_size", [1, 2, 4, 5])
def test_batches_per_epoch_is_what_epoch_order_gives_every_rank(world, batch_size):
    for n in range(1, 23):
        schedule = plan_schedule(n, epochs=1, batch_size=batch_size, grad_accum=1, max_steps=0, rank=0, world=world)
        for rank in range(world):
            assert schedule.batches_per_epoch == len(epoch_order(n, 0, 7, batch_size, rank, world)), (n, rank)


def test_steps_follow_grad_accum_epochs_and_max_steps():
    s = plan_schedule(10, epochs=2.5, batch_size=3, grad_accum=2, max_steps=0, rank=0, world=1)
    assert (s.batches_per_epoch, s.steps_per_epoch, s.total_steps, s.num_epochs) == (4, 2, 5, 3)
    capped = plan_schedule(10, epochs=2.5, batch_size=3, grad_accum=2, max_steps=3, rank=0, world=1)
    assert (capped.total_steps, capped.num_epochs) == (3, 2)
