"""A suite that passes: what a healthy run looks like."""


def test_addition():
    assert 2 + 2 == 4


def test_strings():
    assert "run" + "ledger" == "runledger"


def test_lists():
    assert sorted([3, 1, 2]) == [1, 2, 3]
