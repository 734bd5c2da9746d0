"""A shard snapshot's blob: a header, then one packed entry per guild; anything else refused."""

from __future__ import annotations

import pytest

from app.coord.snapshots import ShardSnapshot, pack_guild, unpack_guild


def test_a_snapshot_round_trips_with_its_entries_packed() -> None:
    guilds = {g: pack_guild({"id": str(g), "name": f"é{g}"}) for g in (1, 2**63 - 1, 7)}
    snapshot = ShardSnapshot("sess", 41, 3, guilds)
    back = ShardSnapshot.decode(snapshot.encode())
    assert back == snapshot
    assert list(back.guilds) == [1, 2**63 - 1, 7]
    assert unpack_guild(back.guilds[7]) == {"id": "7", "name": "é7"}


def test_an_empty_snapshot_round_trips() -> None:
    snapshot = ShardSnapshot("sess", 0, 1, {})
    assert ShardSnapshot.decode(snapshot.encode()) == snapshot


@pytest.mark.parametrize("cut", [1, 5, 13])
def test_a_blob_cut_short_is_refused(cut: int) -> None:
    blob = ShardSnapshot("sess", 41, 3, {9: pack_guild({"id": "9"})}).encode()
    with pytest.raises(ValueError, match="cut short"):
        ShardSnapshot.decode(blob[:-cut])


def test_a_blob_of_another_format_is_refused() -> None:
    with pytest.raises(ValueError, match="not a guild snapshot"):
        ShardSnapshot.decode(b'{"session_id": "s"}\n')
