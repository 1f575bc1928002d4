"""Sign-in throttling rules: counting, locking, growing locks, windows, taking back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.login_throttle import Counter, Policy, admit, fail, fresh, succeed

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = Policy(max_failures=3, window_s=60, lock_base_s=1, lock_max_s=5)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def failed_attempts(counter: Counter, n: int, when: datetime) -> tuple[Counter, list[bool]]:
    locks = []
    for _ in range(n):
        admission = admit(counter, when, POLICY)
        assert admission.admitted
        counter, locked = fail(admission.counter, when, POLICY)
        locks.append(locked)
    return counter, locks


def test_lock_starts_at_the_limit_and_refuses_everything_until_it_ends():
    counter, locks = failed_attempts(Counter(T0), 3, T0)
    assert locks == [False, False, True]
    assert counter.locked_until == at(1)
    assert counter.level == 1
    assert counter.failures == 0
    refused = admit(counter, at(0.5), POLICY)
    assert not refused.admitted
    assert refused.retry_after_s == 0.5
    assert refused.counter == counter  # a refused attempt is not counted
    assert admit(counter, at(1), POLICY).admitted


def test_locks_grow_and_are_capped():
    policy_locks = [POLICY.lock_s(level) for level in range(1, 6)]
    assert policy_locks == [1, 2, 4, 5, 5]
    counter = Counter(T0)
    now = T0
    for expected in (1, 2, 4, 5):
        counter, locks = failed_attempts(counter, 3, now)
        assert locks[-1]
        assert counter.locked_until == now + timedelta(seconds=expected)
        assert counter.locked_until is not None
        now = counter.locked_until


def test_success_takes_its_count_back():
    counter = admit(Counter(T0), T0, POLICY).counter
    assert counter.failures == 1
    assert succeed(counter).failures == 0
    assert succeed(Counter(T0)).failures == 0


def test_attempts_being_checked_count_against_the_limit():
    counter = Counter(T0)
    for _ in range(3):  # three in flight, none finished
        admission = admit(counter, T0, POLICY)
        assert admission.admitted
        counter = admission.counter
    fourth = admit(counter, T0, POLICY)
    assert not fourth.admitted
    assert fourth.retry_after_s == POLICY.lock_base_s


def test_window_and_level_start_afresh_after_a_quiet_window():
    counter, _ = failed_attempts(Counter(T0), 2, T0)
    assert fresh(counter, at(59), POLICY).failures == 2
    assert fresh(counter, at(60), POLICY).failures == 0
    locked, _ = failed_attempts(Counter(T0), 3, T0)  # level 1, locked until at(1)
    assert fresh(locked, at(30), POLICY).level == 1
    assert fresh(locked, at(61), POLICY).level == 0
