import pytest

# the shared helpers assert too: rewrite their asserts so that a failure shows the values
pytest.register_assert_rewrite(f"{__name__}._helpers", f"{__name__}._coco_ref")
