"""Load-time checks: finding the user's class, its parameters and its method signatures."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from infergraph.components.dataplane import ComponentDataPlane, build_user_object
from infergraph.components.loader import import_component, instantiate
from infergraph.components.parameters import parse_parameters
from infergraph.errors import BadParameter, LoadError
from infergraph.sdk import Model
from infergraph.settings import ComponentSettings

# ---------------------------------------------------------------- servable methods and signatures


class Nothing:
    def helper(self):
        return 1


class StubsOnly(Model):
    """Subclasses the sdk but overrides nothing: every method counts as absent."""


@pytest.mark.parametrize("user_cls", [Nothing, StubsOnly])
def test_class_without_servable_method_still_loads(user_cls, caplog):
    """As in Seldon, a class with none of the methods is served: each endpoint answers
    its default (tests/components/test_component_defaults.py); a warning says so at load."""
    dataplane = ComponentDataPlane(user_cls())
    try:
        assert dataplane.component.servable() == []
    finally:
        dataplane.close()
    assert f"{user_cls.__name__} defines none of Seldon's methods" in caplog.text


@pytest.mark.parametrize(
    ("source", "method"),
    [
        pytest.param("def predict(self): ...", "predict", id="predict-no-args"),
        pytest.param("def predict(self, X): ...", "predict", id="predict-one-arg"),
        pytest.param(
            "def predict(self, X, names, *, needed): ...", "predict", id="required-kw-only"
        ),
        pytest.param("def predict(self, X, names, extra): ...", "predict", id="extra-positional"),
        pytest.param("def transform_input(self): ...", "transform_input", id="transform-input"),
        pytest.param(
            "def transform_output(self, X): ...", "transform_output", id="transform-output"
        ),
        pytest.param("def route(self, X): ...", "route", id="route"),
        pytest.param("def aggregate(self, Xs): ...", "aggregate", id="aggregate"),
        pytest.param("def send_feedback(self, X, names): ...", "send_feedback", id="send-feedback"),
        pytest.param("def health_status(self, probe): ...", "health_status", id="health-status"),
        pytest.param("def predict_raw(self): ...", "predict_raw", id="predict-raw"),
        pytest.param("def route_raw(self, a, b): ...", "route_raw", id="route-raw"),
    ],
)
def test_wrong_signature_fails_at_load(source, method):
    namespace: dict[str, object] = {}
    exec(source, namespace)  # builds the one method under test
    user_cls = type("BadSignature", (), {method: namespace[method]})
    with pytest.raises(LoadError) as caught:
        ComponentDataPlane(user_cls())
    assert f"BadSignature.{method}" in caught.value.message
    assert "cannot be called as Seldon calls it" in caught.value.message


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("def predict(self, X, names): ...", id="two-args"),
        pytest.param("def predict(self, X, names, meta=None): ...", id="meta"),
        pytest.param("def predict(self, *args, **kwargs): ...", id="varargs"),
        pytest.param("def predict(self, X, names=None, extra=1): ...", id="defaults"),
        pytest.param("async def predict(self, X, names): ...", id="async"),
    ],
)
def test_accepted_signatures(source):
    namespace: dict[str, object] = {}
    exec(source, namespace)
    dataplane = ComponentDataPlane(type("Fine", (), {"predict": namespace["predict"]})())
    assert dataplane.component.servable() == ["predict"]
    dataplane.close()


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        pytest.param({"name": "n", "value": "3", "type": "INT"}, 3, id="INT-string"),
        pytest.param({"name": "n", "value": 4, "type": "INT"}, 4, id="INT-number"),
        pytest.param({"name": "n", "value": "-7", "type": "INT"}, -7, id="INT-negative"),
        pytest.param({"name": "n", "value": "0.25", "type": "FLOAT"}, 0.25, id="FLOAT"),
        pytest.param({"name": "n", "value": "1e3", "type": "DOUBLE"}, 1000.0, id="DOUBLE"),
        pytest.param({"name": "n", "value": "text", "type": "STRING"}, "text", id="STRING"),
        pytest.param({"name": "n", "value": 12, "type": "STRING"}, "12", id="STRING-from-number"),
        pytest.param({"name": "n", "value": "x"}, "x", id="type-defaults-to-STRING"),
        pytest.param({"name": "n", "value": "true", "type": "BOOL"}, True, id="BOOL-true"),
        pytest.param({"name": "n", "value": "Yes", "type": "BOOL"}, True, id="BOOL-yes"),
        pytest.param({"name": "n", "value": "0", "type": "BOOL"}, False, id="BOOL-0"),
        pytest.param({"name": "n", "value": "off", "type": "BOOL"}, False, id="BOOL-off"),
        pytest.param({"name": "n", "value": False, "type": "BOOL"}, False, id="BOOL-json-false"),
    ],
)
def test_parameter_conversions(item, expected):
    params = parse_parameters([item])
    assert params == {"n": expected}
    assert type(params["n"]) is type(expected)


def test_parameters_from_json_text():
    text = '[{"name": "a", "value": "1", "type": "INT"}, {"name": "b", "value": "x"}]'
    assert parse_parameters(text) == {"a": 1, "b": "x"}


@pytest.mark.parametrize("source", [None, "", "[]", []])
def test_no_parameters(source):
    assert parse_parameters(source) == {}


@pytest.mark.parametrize(
    ("source", "words"),
    [
        pytest.param(
            '[{"name": "alpha", "value": "1", "type": "INTEGER"}]',
            ["Bad model parameter type", "INTEGER", "alpha", "INT, FLOAT, DOUBLE, STRING, BOOL"],
            id="bad-type-name",
        ),
        pytest.param(
            '[{"name": "alpha", "value": "1.5", "type": "INT"}]',
            ["alpha", "can't be parsed as a INT"],
            id="not-an-int",
        ),
        pytest.param(
            '[{"name": "beta", "value": "abc", "type": "FLOAT"}]',
            ["beta", "can't be parsed as a FLOAT"],
            id="not-a-float",
        ),
        pytest.param(
            '[{"name": "beta", "value": null, "type": "DOUBLE"}]',
            ["beta", "DOUBLE"],
            id="null-double",
        ),
        pytest.param(
            '[{"name": "gamma", "value": "maybe", "type": "BOOL"}]',
            ["gamma", "can't be parsed as a BOOL"],
            id="not-a-bool",
        ),
        pytest.param(
            '[{"name": "a", "value": "1"}, {"value": "2"}]',
            ["--parameters[1]", "needs name, value and type"],
            id="missing-name",
        ),
        pytest.param('{"name": "a"}', ["--parameters must be a JSON list"], id="not-a-list"),
        pytest.param("[{name: a}]", ["--parameters is not valid JSON"], id="not-json"),
    ],
)
def test_bad_parameters(source, words):
    with pytest.raises(BadParameter) as caught:
        parse_parameters(source, "--parameters")
    assert caught.value.reason == "MICROSERVICE_BAD_PARAMETER"
    for word in words:
        assert word in caught.value.message


class Configurable:
    def __init__(self, size: int, name: str = "default") -> None:
        self.size, self.name = size, name

    def predict(self, X, names):
        return X


def test_instantiate_passes_parameters_as_keywords():
    user = instantiate(Configurable, {"size": 3})
    assert (user.size, user.name) == (3, "default")


@pytest.mark.parametrize(
    ("parameters", "words"),
    [
        pytest.param(
            {"colour": "red"},
            ["Configurable.__init__ does not accept", "colour"],
            id="unknown-parameter",
        ),
        pytest.param({}, ["Configurable.__init__ does not accept"], id="missing-parameter"),
    ],
)
def test_instantiate_rejects_parameters(parameters, words):
    with pytest.raises(LoadError) as caught:
        instantiate(Configurable, parameters)
    for word in words:
        assert word in caught.value.message


def test_instantiate_reports_constructor_errors():
    class Broken:
        def __init__(self):
            raise RuntimeError("no model file")

    with pytest.raises(LoadError, match=r"Broken\(\*\*\{\}\) raised RuntimeError: no model file"):
        instantiate(Broken, {})


# ---------------------------------------------------------------- import_component


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A folder to write user modules into; sys.path and sys.modules are restored after."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)

    def write(relative: str, source: str) -> Path:
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        return tmp_path

    yield write
    for name in set(sys.modules) - before:
        del sys.modules[name]


MODEL_SOURCE = """
    class {name}:
        def __init__(self, factor=1):
            self.factor = factor

        def predict(self, X, names):
            return X * self.factor
"""


def test_import_module_named_like_its_class(module_dir):
    path = module_dir("IgLoadModel.py", MODEL_SOURCE.format(name="IgLoadModel"))
    cls = import_component("IgLoadModel", path)
    assert cls.__name__ == "IgLoadModel" and cls.__module__ == "IgLoadModel"


def test_import_dotted_class(module_dir):
    module_dir("ig_load_pkg/__init__.py", "")
    path = module_dir("ig_load_pkg/models.py", MODEL_SOURCE.format(name="Scaler"))
    cls = import_component("ig_load_pkg.models.Scaler", path)
    assert (cls.__module__, cls.__name__) == ("ig_load_pkg.models", "Scaler")


def test_build_user_object_from_settings(module_dir):
    path = module_dir("IgBuiltModel.py", MODEL_SOURCE.format(name="IgBuiltModel"))
    settings = ComponentSettings(
        interface_name="IgBuiltModel",
        path=str(path),
        parameters='[{"name": "factor", "value": "5", "type": "INT"}]',
    )
    user = build_user_object(settings)
    assert type(user).__name__ == "IgBuiltModel"
    assert user.factor == 5


@pytest.mark.parametrize(
    ("files", "interface", "words"),
    [
        pytest.param(
            {}, "IgMissingModel", ["no module named 'IgMissingModel'"], id="missing-module"
        ),
        pytest.param(
            {},
            "ig_missing_pkg.mod.Cls",
            ["no module named 'ig_missing_pkg.mod'"],
            id="missing-package",
        ),
        pytest.param(
            {"IgNoClass.py": "x = 1\n"},
            "IgNoClass",
            ["has no class 'IgNoClass'"],
            id="missing-class",
        ),
        pytest.param(
            {"IgNotClass.py": "IgNotClass = 3\n"},
            "IgNotClass",
            ["is a int, not a class"],
            id="not-a-class",
        ),
        pytest.param(
            {"IgRaises.py": "raise RuntimeError('bad import')\n"},
            "IgRaises",
            ["Importing 'IgRaises' failed", "RuntimeError: bad import"],
            id="import-raises",
        ),
        pytest.param(
            {"IgSyntax.py": "def (:\n"},
            "IgSyntax",
            ["Importing 'IgSyntax' failed", "SyntaxError"],
            id="syntax-error",
        ),
        pytest.param(
            {"IgNeedsDep.py": "import ig_absent_dependency\n"},
            "IgNeedsDep",
            ["Cannot import 'IgNeedsDep'", "ig_absent_dependency"],
            id="missing-dependency",
        ),
        pytest.param(
            {"ig_dep_utils.py": "import ig_dep\n"},
            "ig_dep_utils.Cls",
            ["Cannot import 'ig_dep_utils'", "No module named 'ig_dep'"],
            id="dependency-name-is-a-prefix",
        ),
    ],
)
def test_import_errors(module_dir, files, interface, words):
    path = module_dir("placeholder.txt", "")
    for relative, source in files.items():
        module_dir(relative, source)
    with pytest.raises(LoadError) as caught:
        import_component(interface, path)
    for word in words:
        assert word in caught.value.message


def test_build_user_object_needs_a_name():
    with pytest.raises(LoadError, match="No component given"):
        build_user_object(ComponentSettings())
