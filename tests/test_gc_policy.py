"""The rendezvous's garbage-collection policy: survivors of a full collection frozen, all
thawed and collected once a period (rendezvous/gc_policy.py)."""

from __future__ import annotations

import gc
import weakref

from rendezvous.gc_policy import GC_FREEZER, GcAction, GcPolicy
from tests.conftest import MakeRendezvous

HOUR = 3600.0


def test_policy_freezes_after_each_full_collection_and_thaws_once_a_period() -> None:
    policy = GcPolicy(thaw_seconds=HOUR)
    steps = [
        ("tick", 5.0),  # nothing frozen yet: nothing to thaw
        ("full", 10.0),
        ("tick", 20.0),
        ("full", 1000.0),  # a later freeze does not restart the period
        ("tick", HOUR + 9.0),
        ("tick", HOUR + 10.0),
        ("tick", HOUR + 11.0),  # thawed: nothing frozen until the next full collection
        ("full", HOUR + 11.5),  # the thaw's own collection: its survivors frozen again
        ("tick", 2 * HOUR + 11.0),
        ("tick", 2 * HOUR + 11.5),
    ]
    record = [
        (kind, now, (policy.tick if kind == "tick" else policy.full_collection_ended)(now))
        for kind, now in steps
    ]
    assert [action for _, _, action in record] == [
        GcAction.NOTHING,
        GcAction.FREEZE,
        GcAction.NOTHING,
        GcAction.FREEZE,
        GcAction.NOTHING,
        GcAction.THAW,
        GcAction.NOTHING,
        GcAction.FREEZE,
        GcAction.NOTHING,
        GcAction.THAW,
    ]


def test_policy_off_leaves_the_collector_alone() -> None:
    policy = GcPolicy(thaw_seconds=0)
    assert not policy.enabled
    assert policy.full_collection_ended(1.0) is GcAction.NOTHING
    assert policy.tick(10 * HOUR) is GcAction.NOTHING


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cycle collector frees it


async def test_an_instance_freezes_survivors_and_still_frees_cyclic_garbage(
    make_rendezvous: MakeRendezvous,
) -> None:
    client = await make_rendezvous(gc_thaw_minutes=60)
    freezer = client.app[GC_FREEZER]
    node = Node()
    gone = weakref.ref(node)
    gc.collect()  # a full collection: node survives it and is frozen
    assert freezer.freezes >= 1
    assert gc.get_freeze_count() > 0
    del node
    gc.collect()
    assert gone() is not None, "a frozen cycle waits for the thaw"
    assert freezer.tick(freezer.clock() + 1.0) is GcAction.NOTHING
    assert freezer.tick(freezer.clock() + HOUR) is GcAction.THAW
    assert gone() is None, "the thaw's full collection frees the cycle"
    assert gc.get_freeze_count() > 0, "and freezes its survivors again"
    await client.close()
    assert gc.get_freeze_count() == 0, "a stopped instance leaves nothing frozen"
    assert freezer._on_collection not in gc.callbacks


async def test_an_instance_with_the_policy_off_freezes_nothing(
    make_rendezvous: MakeRendezvous,
) -> None:
    await make_rendezvous(gc_thaw_minutes=0)
    node = Node()
    gone = weakref.ref(node)
    gc.collect()
    del node
    gc.collect()
    assert gc.get_freeze_count() == 0
    assert gone() is None
