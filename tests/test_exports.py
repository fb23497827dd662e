import panel_pusher


def test_all_is_sorted():
    assert panel_pusher.__all__ == sorted(panel_pusher.__all__)


def test_all_names_exist():
    missing = [name for name in panel_pusher.__all__ if not hasattr(panel_pusher, name)]
    assert missing == []
