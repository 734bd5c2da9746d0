"""The REST budget's rules (app/coord/rest_schedule.py) on a made-up clock."""

from __future__ import annotations

from app.coord.rest_schedule import (
    MARGIN,
    Answer,
    InvalidCount,
    Pacing,
    Priority,
    RestCall,
    Schedule,
)

MESSAGES = RestCall.of("POST", "/channels/7/messages")
BUCKET = {
    "X-RateLimit-Bucket": "abc",
    "X-RateLimit-Limit": "2",
    "X-RateLimit-Remaining": "1",
    "X-RateLimit-Reset-After": "5",
}


def test_a_call_is_named_by_its_route_and_major_parameter() -> None:
    call = RestCall.of("patch", "/channels/7/messages/99")
    assert (call.route, call.major, call.exempt) == (
        "PATCH /channels/{id}/messages/{id}",
        "7",
        False,
    )
    assert RestCall.of("POST", "/interactions/1/tok/callback").exempt
    assert RestCall.of("GET", "/users/@me").major == ""


def test_the_global_pace_spaces_slots_and_holds_low_priority_back() -> None:
    schedule, pacing = Schedule(routes={MESSAGES.route: "-"}), Pacing.of(10.0)
    waits = [schedule.admit(MESSAGES, pacing, 100.0).wait for _ in range(6)]
    assert [round(w, 3) for w in waits] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    low = RestCall(MESSAGES.route, "7", priority=Priority.LOW)
    refused = schedule.admit(low, pacing, 100.0)
    assert (refused.granted, refused.blocked_by) == (False, "global")
    assert schedule.admit(low, pacing, 100.15).granted  # the queue is short again
    exempt = RestCall.of("POST", "/interactions/1/tok/callback")
    assert schedule.admit(exempt, pacing, 100.15).wait == 0  # never queued


def test_interaction_calls_go_at_once_and_leave_nothing_behind() -> None:
    """A route per interaction token: kept, they would grow with every command ever run."""
    schedule, pacing = Schedule(), Pacing.of(10.0)
    for i in range(50):
        for path in (f"/interactions/{i}/tok{i}/callback", f"/webhooks/1/tok{i}"):
            call = RestCall.of("POST", path)
            assert schedule.admit(call, pacing, 100.0).wait == 0
            schedule.learn(call, Answer.of(200, BUCKET), 100.0)
    assert not (schedule.routes or schedule.meta or schedule.windows or schedule.learning)
    assert schedule.tat == 0.0  # nor do they take global slots


def test_self_throttling_halves_the_rate_and_stops_low_priority() -> None:
    throttled = Pacing.of(10.0, throttled=True)
    assert throttled.interval == 0.2 and throttled.backlog_for(Priority.LOW) < 0
    schedule = Schedule(routes={MESSAGES.route: "-"})
    low = RestCall(MESSAGES.route, "7", priority=Priority.LOW)
    assert not schedule.admit(low, throttled, 0.0).granted


def test_a_route_is_learned_from_its_first_answer_then_its_bucket_is_kept() -> None:
    schedule, pacing = Schedule(), Pacing.of(1000.0)
    assert schedule.admit(MESSAGES, pacing, 0.0).granted
    second = schedule.admit(MESSAGES, pacing, 0.01)
    assert (second.granted, second.blocked_by) == (False, "route")  # first goes alone
    schedule.learn(MESSAGES, Answer.of(200, BUCKET), 0.05)
    assert schedule.admit(MESSAGES, pacing, 0.06).granted  # the bucket's last one
    blocked = schedule.admit(MESSAGES, pacing, 0.07)
    assert blocked.blocked_by == "route" and 4.9 < blocked.wait <= 5.0
    assert schedule.admit(MESSAGES, pacing, 5.1).granted  # a new window, judged at its slot
    other = RestCall.of("POST", "/channels/8/messages")  # another channel: a window of its own
    assert schedule.admit(other, pacing, 5.1).granted
    assert schedule.admit(other, pacing, 5.1).granted
    assert schedule.admit(other, pacing, 5.1).blocked_by == "route"
    assert abs(schedule.windows[("abc", "8")].reset_at - (5.1 + 5 + MARGIN)) < 0.01


def test_a_429_empties_the_window_and_a_plain_route_is_never_held() -> None:
    schedule, pacing = Schedule(), Pacing.of(1000.0)
    limited = {**BUCKET, "X-RateLimit-Remaining": "0", "X-RateLimit-Scope": "user"}
    schedule.learn(MESSAGES, Answer.of(429, {**limited, "Retry-After": "3"}), 0.0)
    assert schedule.admit(MESSAGES, pacing, 1.0).blocked_by == "route"
    plain = RestCall.of("GET", "/users/@me")
    schedule.admit(plain, pacing, 0.0)
    schedule.learn(plain, Answer.of(200, {}), 0.0)
    assert all(schedule.admit(plain, pacing, 0.0).granted for _ in range(5))


def test_a_process_alone_takes_its_share_of_each_route_bucket() -> None:
    """Three pods without Redis: each takes 5 // 3 = 1 of a window of 5, never all 5."""
    schedule, pacing = Schedule(share=3), Pacing.of(1000.0)
    five = {**BUCKET, "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4"}
    assert schedule.admit(MESSAGES, pacing, 0.0).granted
    schedule.learn(MESSAGES, Answer.of(200, five), 0.05)  # learned: 4 left, this pod's share 1
    assert schedule.admit(MESSAGES, pacing, 0.06).granted
    assert schedule.admit(MESSAGES, pacing, 0.07).blocked_by == "route"
    other = RestCall.of("POST", "/channels/8/messages")  # a fresh window: the share at once
    assert schedule.admit(other, pacing, 0.1).granted
    assert schedule.admit(other, pacing, 0.1).blocked_by == "route"
    alone = Schedule(share=7, routes={MESSAGES.route: "abc"})  # more pods than the limit: 1
    alone.learn(MESSAGES, Answer.of(200, five), 0.0)
    assert alone.admit(MESSAGES, pacing, 0.1).granted


def test_an_answer_takes_off_the_requests_admitted_after_its_own() -> None:
    """Our window ended, Discord's began with the first of three we sent: its answer says 4
    left, but two more of ours are already counted there, so 2 may go, not 4."""
    schedule, pacing = Schedule(), Pacing.of(1000.0)
    five = {**BUCKET, "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4"}
    assert schedule.admit(MESSAGES, pacing, 0.0).granted  # the route's first: learning
    schedule.learn(MESSAGES, Answer.of(200, five), 0.01)  # our window: 4 left until 5.01
    tickets = [schedule.admit(MESSAGES, pacing, 4.9).local_ticket for _ in range(3)]
    assert tickets == [1, 2, 3]
    schedule.learn(MESSAGES, Answer.of(200, five), 5.05, ticket=1)  # Discord's new window
    assert [schedule.admit(MESSAGES, pacing, 5.06).granted for _ in range(3)] == [
        True,
        True,
        False,
    ]


def test_which_answers_are_invalid_requests() -> None:
    assert Answer.of(401, {}).invalid and Answer.of(403, {}).invalid
    assert Answer.of(429, {"X-RateLimit-Scope": "global"}).invalid
    assert not Answer.of(429, {"X-RateLimit-Scope": "shared"}).invalid
    assert not Answer.of(429, {"generated-by-proxy": "true"}).invalid
    assert not Answer.of(404, {}).invalid


def test_invalid_requests_slide_out_after_ten_minutes() -> None:
    count = InvalidCount()
    count.add(0.0, 3)
    count.add(300.5)
    assert count.total(599.0) == 4
    assert count.total(600.0) == 1
