import pytest

from deepnotes.core.registry import Registry, UnknownNameError


def test_register_create_names_and_meta():
    reg = Registry("widget")

    @reg.register("b", size=2)
    def make_b(x):
        return ("b", x)

    reg.add("a", lambda x: ("a", x))
    assert reg.names() == ["a", "b"]
    assert reg.create("b", 3) == ("b", 3)
    assert reg.meta("b") == {"size": 2}
    assert "a" in reg and "zzz" not in reg
    assert len(reg) == 2 and list(reg) == ["a", "b"]


def test_unknown_name_lists_valid_names():
    reg = Registry("widget")
    reg.add("alpha", object)
    reg.add("beta", object)
    with pytest.raises(UnknownNameError) as info:
        reg.get("gamma")
    msg = str(info.value)
    assert "unknown widget 'gamma'" in msg and "alpha, beta" in msg


def test_duplicate_name_from_another_object_is_an_error():
    reg = Registry("widget")
    reg.add("x", int)
    reg.add("x", int)  # same object again (module reload) is fine
    with pytest.raises(ValueError, match="already registered"):
        reg.add("x", float)


def test_name_must_be_a_string():
    reg = Registry("widget")
    with pytest.raises(TypeError, match="name"):
        reg.register(name="")(None)


def test_project_registries_load_their_modules_lazily():
    import subprocess
    import sys

    code = (
        "from deepnotes.core.registry import MODELS, CLAIMS, BENCH_CASES\n"
        "m = MODELS.create('cnn', (1, 8, 8), 10)\n"
        "assert '1a' in CLAIMS and 'trainer_overhead' in BENCH_CASES.names()\n"
        "print(type(m).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "SmallCNN"
