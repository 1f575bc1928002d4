"""The log scanner finds card numbers however they are written, and nothing else."""

from tests.fixtures.pan_scan import card_numbers, luhn_ok


def test_luhn():
    assert luhn_ok("4242424242424242")
    assert not luhn_ok("4242424242424241")


def test_finds_plain_grouped_and_dashed_numbers():
    text = "pan=4111111111111111 card 5555 5555 5555 4444, other 4000-0000-0000-0002."
    assert card_numbers(text) == [
        "4111111111111111",
        "5555 5555 5555 4444",
        "4000-0000-0000-0002",
    ]


def test_ignores_masked_numbers_times_ids_and_invalid_runs():
    text = (
        "411111******1111 at 1795849272894 uid 373b4458-457d-8ede-a22f-cbcc805f62d8 "
        "offset 4242424242424241 amount 150000 runtime=13.610341706998952 s "
        "id 0b7a1f4e-2459-4382-8725-8a0e52671851 n 9d0c-5555-5555-5555-4444"
    )
    assert card_numbers(text) == []
