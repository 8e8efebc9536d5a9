"""calib.json_file.Fields: every reader returns the typed value, or raises the caller's error
naming the JSON path, what was expected and what was found."""

import json
import math

import pytest

from calib.json_file import Fields, Messages, load_json_file


class ReadError(ValueError):
    pass


DOCUMENT = {
    "mass": 70.0,
    "count": 3,
    "name": "vas_lat_r",
    "names": ["a", "b"],
    "centre": [0.1, -0.2, 0.3],
    "body": {"side": "right", "height": 1.8},
    "muscles": [{"f_max": 1000.0}, {"f_max": 0.0}],
    "files": {"model.pt2": "abc"},
    "flag": True,
}


@pytest.fixture()
def doc() -> Fields:
    return Fields(json.loads(json.dumps(DOCUMENT)), ReadError)


def _message(read) -> str:
    with pytest.raises(ReadError) as info:
        read()
    return str(info.value)


def test_readers_return_typed_values(doc):
    assert doc.number("mass", positive=True) == 70.0
    assert doc.number("count") == 3.0 and isinstance(doc.number("count"), float)
    assert doc.integer("count", at_least=1) == 3
    assert doc.string("name") == "vas_lat_r"
    assert doc.string("name", choices=("vas_lat_r",)) == "vas_lat_r"
    assert doc.names("names") == ("a", "b")
    assert doc.vector("centre", 3) == (0.1, -0.2, 0.3)
    body = doc.mapping("body", allowed=("side", "height"), kind="body")
    assert body.path == "body" and body.number("height", unit="m", positive=True) == 1.8
    muscles = doc.sequence("muscles", "a list of muscles", non_empty=True)
    assert len(muscles) == 2
    assert muscles.mapping(0).number("f_max", positive=True) == 1000.0
    assert "body" in doc and "nothing" not in doc and 0 not in muscles
    assert doc.get("nothing", 1.5) == 1.5 and doc.get("name") == "vas_lat_r"


def test_the_default_message_names_path_expectation_and_value(doc):
    muscles = doc.sequence("muscles", "a list of muscles")
    message = _message(lambda: muscles.mapping(1).number("f_max", unit="N", positive=True))
    assert message == "field 'muscles[1].f_max': expected a positive number (N), got 0.0"


@pytest.mark.parametrize(
    ("read", "path", "expected", "got"),
    [
        (lambda d: d.number("name"), "'name'", "a finite number", "'vas_lat_r'"),
        (lambda d: d.number("flag"), "'flag'", "a finite number", "True"),
        (lambda d: d.number("mass", at_least=100.0), "'mass'", "a number >= 100", "70.0"),
        (lambda d: d.number("mass", below=50.0), "'mass'", "a finite number", "70.0"),
        (lambda d: d.number("mass", "an angle", below=1.0), "'mass'", "an angle", "70.0"),
        (lambda d: d.integer("mass"), "'mass'", "an integer", "70.0"),
        (lambda d: d.integer("flag"), "'flag'", "an integer", "True"),
        (lambda d: d.integer("count", at_least=4), "'count'", "an integer >= 4", "3"),
        (lambda d: d.string("count"), "'count'", "a non-empty string", "3"),
        (lambda d: d.string("name", choices=("x", "y")), "'name'", "one of ['x', 'y']", "'vas"),
        (lambda d: d.names("name"), "'name'", "a non-empty list of distinct names", "'vas"),
        (
            lambda d: d.vector("centre", 2, components="lo, hi", unit="rad"),
            "'centre'",
            "a list of 2 finite numbers [lo, hi] (rad)",
            "[0.1, -0.2, 0.3]",
        ),
        (lambda d: d.mapping("centre"), "'centre'", "a JSON object", "[0.1"),
        (lambda d: d.sequence("body", "a list of 3 rows"), "'body'", "a list of 3 rows", "{'side'"),
        (lambda d: d.sequence("names", "three names", length=3), "'names'", "three names", "['a'"),
        (lambda d: d.mapping("body").number("side"), "'body.side'", "a finite number", "'right'"),
        (
            lambda d: d.mapping("files").string("model.pt2", choices=("x",)),
            "'files['model.pt2']'",
            "one of ['x']",
            "'abc'",
        ),
    ],
)
def test_each_reader_names_the_path_and_what_it_expected(doc, read, path, expected, got):
    message = _message(lambda: read(doc))
    assert message.startswith(f"field {path}: expected {expected}")
    assert f", got {got}" in message


def test_a_bad_element_of_a_vector_is_named_by_its_index():
    fields = Fields({"centre": [0.1, -0.2, math.inf]}, ReadError)
    message = _message(lambda: fields.vector("centre", 3, components="x, y, z", unit="m"))
    assert message == (
        "field 'centre[2]': expected a list of 3 finite numbers [x, y, z] (m) (finite), got inf"
    )


def test_missing_and_unknown_keys_are_named(doc):
    assert _message(lambda: doc.mapping("body").number("mass")) == "field 'body.mass' is missing"
    message = _message(lambda: doc.mapping("body", allowed=("side",), kind="body"))
    assert message == "field 'body.height' is not a body field; expected one of ['side']"


def test_a_labelled_path_carries_its_note(doc):
    muscle = doc.sequence("muscles", "muscles").mapping(1).labelled("vas_lat_r")
    message = _message(lambda: muscle.number("f_max", positive=True))
    assert message.startswith("field 'muscles[1] (vas_lat_r).f_max': expected a positive number")


def test_a_long_value_is_shown_cut():
    fields = Fields({"x": "y" * 200}, ReadError)
    message = _message(lambda: fields.number("x"))
    assert message.endswith("got '" + "y" * 56 + "...")


def test_the_caller_words_its_messages():
    fields = Fields(
        {"window": "20"},
        ReadError,
        messages=Messages("manifest {path}", "{label} must be {expected}, got {got}"),
    )
    assert _message(lambda: fields.integer("window", at_least=1)) == (
        "manifest window must be an integer >= 1, got '20'"
    )
    assert _message(lambda: fields.value("lookahead")) == "manifest lookahead is missing"


def test_load_json_file_puts_the_file_in_front(tmp_path):
    path = tmp_path / "thing.json"
    path.write_text(json.dumps({"body": {"height": -1.0}}))

    def read(data):
        return Fields(data, ReadError).mapping("body").number("height", unit="m", positive=True)

    with pytest.raises(ReadError) as info:
        load_json_file(path, read, ReadError, "thing")
    assert str(info.value) == (
        f"{path}: field 'body.height': expected a positive number (m), got -1.0"
    )
