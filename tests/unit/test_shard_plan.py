import pytest

from app.coord.shard_plan import OutsidePlan, ShardPlan, pod_index, shard_for_guild


def test_pods_own_consecutive_ranges() -> None:
    plan = ShardPlan(shard_count=6, shards_per_pod=4)
    assert plan.pods_needed == 2
    assert plan.shards_of(0) == [0, 1, 2, 3]
    assert plan.shards_of(1) == [4, 5]
    with pytest.raises(OutsidePlan, match="pod 2 is outside the shard plan"):
        plan.shards_of(2)
    assert "pod 1: shards 4-5" in plan.describe()


def test_pod_index_from_label_or_hostname() -> None:
    assert pod_index({"POD_INDEX": "3"}, "whatever") == 3
    assert pod_index({}, "guildbot-12") == 12
    assert pod_index({}, "laptop") == 0
    with pytest.raises(ValueError, match="POD_INDEX"):
        pod_index({"POD_INDEX": "x"}, "guildbot-1")


def test_guild_to_shard_follows_discord() -> None:
    assert shard_for_guild(41771983423143937, 1) == 0
    assert shard_for_guild((7 << 22) | 123, 4) == 3
