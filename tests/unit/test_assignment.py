from hypothesis import given
from hypothesis import strategies as st

from app.coord.assignment import assign, moves, ranks


def test_eight_shards_two_then_four_pods() -> None:
    assert ranks(8, 2) == (0, 0, 0, 0, 1, 1, 1, 1)
    four = ranks(8, 4)
    assert sorted(four.count(r) for r in range(4)) == [2, 2, 2, 2]
    two = assign(8, ["a", "b"])
    assert moves(two, assign(8, ["a", "b", "c", "d"])) == 4  # exactly what the new pods hold


@given(st.integers(1, 300), st.integers(1, 40))
def test_balanced_stable_and_minimal(shards: int, pods: int) -> None:
    owners = ranks(shards, pods)
    live = min(pods, shards)
    counts = [owners.count(r) for r in range(live)]
    assert max(counts) - min(counts) <= 1 and sum(counts) == shards
    assert owners[0] == 0  # pod 0 keeps shard 0
    if pods > 1 and pods <= shards:
        before = ranks(shards, pods - 1)
        changed = [s for s in range(shards) if before[s] != owners[s]]
        assert all(owners[s] == pods - 1 for s in changed)  # shards only move to the new pod
        assert len(changed) == owners.count(pods - 1)


def test_every_pod_computes_the_same_answer() -> None:
    members = ["0:pod-a", "1:pod-b", "2:pod-c"]
    assert assign(16, members) == assign(16, list(members))
