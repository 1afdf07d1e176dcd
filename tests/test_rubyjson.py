"""JSON spelled as Ruby writes it, and job payloads read strictly (resque/rubyjson.py).

The expected strings come from the real Ruby: ``ruby -rjson -e 'puts JSON.generate([...])'``
and resque 3.0's ``Resque.encode`` (MultiJson over the json gem); one test asks the real Ruby
again for thousands of floats.
"""

from __future__ import annotations

import json
import random
import struct
import subprocess
import time
from pathlib import Path

import pytest
import redis
from support.peers import require_ruby_resque
from support.replies import as_text

from resque import Resque, layout, rubyjson

HARNESS = Path(__file__).parent / "ruby" / "harness.rb"

# --- floats as Ruby spells them ---------------------------------------------------------------


def test_exponent_floats_are_spelled_as_rubys_json_generate_spells_them() -> None:
    # ruby -rjson -e 'puts JSON.generate([1e20, 1e-5, 1.5e300, 12.0, 0.1])'
    assert rubyjson.encode([1e20, 1e-5, 1.5e300, 12.0, 0.1]) == (
        "[1.0e+20,1.0e-05,1.5e+300,12.0,0.1]"
    )


@pytest.mark.parametrize(
    ("value", "ruby"),
    [
        (1e15, "1.0e+15"),  # Python: 1000000000000000.0
        (1234567890123456.0, "1.234567890123456e+15"),
        (-1e15, "-1.0e+15"),
        (1e15 + 0.125, "1000000000000000.1"),  # 17 digits: a fraction, so fixed
        (1234567890123456.5, "1234567890123456.5"),
        (9999999999999998.0, "9.999999999999998e+15"),
        (1e16, "1.0e+16"),
        (999999999999999.9, "999999999999999.9"),
        (1e14, "100000000000000.0"),
        (0.0001, "0.0001"),
        (9.99e-05, "9.99e-05"),
        (5e-324, "5.0e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (-0.0, "-0.0"),
        (0.0, "0.0"),
    ],
)
def test_float_boundaries_are_spelled_as_ruby_spells_them(value: float, ruby: str) -> None:
    assert rubyjson.ruby_float(value) == ruby
    assert rubyjson.encode([value]) == f"[{ruby}]"


def test_a_job_payload_with_exponent_floats_is_byte_identical_to_rubys() -> None:
    # Resque.encode("class" => "Physics", "args" => [1e20, {"g" => 6.674e-11}, 3])
    assert rubyjson.encode({"class": "Physics", "args": [1e20, {"g": 6.674e-11}, 3]}) == (
        '{"class":"Physics","args":[1.0e+20,{"g":6.674e-11},3]}'
    )


def test_a_delayed_item_with_exponent_floats_is_byte_identical_to_resque_schedulers() -> None:
    # Its bytes are part of the timestamps:<item> key resque-scheduler looks up.
    assert layout.delayed_item("Physics", [1e20, 2e-7], "q") == (
        '{"class":"Physics","args":[1.0e+20,2.0e-07],"queue":"q"}'
    )


def test_ruby_dequeues_a_python_job_holding_exponent_floats(
    r: redis.Redis, redis_url: str
) -> None:
    lib = require_ruby_resque()
    # Ruby's exact payload (job_ids=False): Resque.dequeue compares bytes it builds without our id
    Resque(r, job_ids=False).enqueue_to("high", "Physics", 1e20, 1e-05, 1e15,
                                        {"c": 2.99792458e8})
    done = subprocess.run(
        ["ruby", "-I", lib, str(HARNESS), redis_url, "dequeue", "Physics",
         '[1.0e+20, 1.0e-05, 1.0e+15, {"c": 299792458.0}]'],
        capture_output=True, text=True, timeout=30, check=True,
    )
    assert done.stdout.strip() == "1"
    assert r.llen("resque:queue:high") == 0


def test_a_job_with_an_id_keywords_and_a_status_spells_its_floats_as_ruby(
    r: redis.Redis,
) -> None:
    # Our keys follow class and args; the floats in args (keywords included) are Ruby's.
    assert layout.encode_job("Physics", [1e20, {"__kwargs__": True, "g": 6.674e-11}],
                             "5f0c-1", 60) == (
        '{"class":"Physics","args":[1.0e+20,{"__kwargs__":true,"g":6.674e-11}],'
        '"id":"5f0c-1","track":60}'
    )
    job = Resque(r).enqueue_to("high", "Physics", 1e20, 1e-05, c=1e15)
    assert job is not None and job.id is not None
    (raw,) = r.lrange("resque:queue:high", 0, -1)
    assert as_text(raw) == job.payload == (
        '{"class":"Physics","args":[1.0e+20,1.0e-05,{"__kwargs__":true,"c":1.0e+15}],'
        f'"id":"{job.id}"}}'
    )


def test_a_delayed_job_with_an_id_keeps_rubys_floats_through_the_move(r: redis.Redis) -> None:
    client = Resque(r)
    due = int(time.time()) + 600
    job = client.enqueue_at_with_queue("high", due, "Physics", 2e-7, 2e15)
    assert job is not None
    expected = f'{{"class":"Physics","args":[2.0e-07,2.0e+15],"id":"{job.id}"}}'
    (item,) = r.lrange(f"resque:delayed:{due}", 0, -1)
    assert as_text(item) == expected[:-1] + ',"queue":"high"}'
    client.delayed.move_due(now=due)
    assert r.lrange("resque:queue:high", 0, -1) == [expected.encode()]


@pytest.mark.parametrize(
    "value",
    [
        ["1e+20", "e-mail", "re-send", "1000000000000000.5"],
        {"1e-05": "x", "note": "a+b"},
        [12345678901234567890, -5, 0.5, "2026-11-27"],
    ],
)
def test_strings_and_integers_that_look_like_floats_are_left_as_python_writes_them(
    value: object,
) -> None:
    assert rubyjson.encode(value) == json.dumps(value, separators=(",", ":"))


def test_a_string_beside_an_exponent_float_keeps_its_bytes() -> None:
    value = ["say \"1e+20\" \\ e-5", 1e-7, "3.0e+1"]
    assert rubyjson.encode(value) == '["say \\"1e+20\\" \\\\ e-5",1.0e-07,"3.0e+1"]'


def test_float_keys_are_spelled_as_ruby_writes_a_keys_to_s() -> None:
    # ruby -rjson -e 'puts({1e20=>1, 1e-5=>2, 1e15=>3, 2.5=>4, "1e+20"=>5, true=>6,
    #                       7=>[1e20, {1e-7=>"1e+20"}]}.to_json)'
    value = {1e20: 1, 1e-5: 2, 1e15: 3, 2.5: 4, "1e+20": 5, True: 6, 7: [1e20, {1e-7: "1e+20"}]}
    assert rubyjson.encode(value) == (
        '{"1.0e+20":1,"1.0e-05":2,"1.0e+15":3,"2.5":4,"1e+20":5,"true":6,'
        '"7":[1.0e+20,{"1.0e-07":"1e+20"}]}'
    )
    assert layout.encode_job("Keys", [{1e20: "x"}]) == '{"class":"Keys","args":[{"1.0e+20":"x"}]}'


def test_a_float_subclass_is_spelled_as_a_float() -> None:
    class Meters(float):
        def __repr__(self) -> str:
            return f"Meters({float(self)})"

    assert rubyjson.encode([Meters(1e20), Meters(2.5)]) == "[1.0e+20,2.5]"


def test_encoding_a_value_nested_deeper_than_the_stack_is_a_value_error() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested too deeply"):
        rubyjson.encode(deep)


def _doubles(count: int) -> list[float]:
    """Random bit patterns (every exponent), and random values and whole numbers around the
    points where Ruby switches to exponent form."""
    rng = random.Random(20261127)
    values: list[float] = []
    while len(values) < count:
        (value,) = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))
        if value == value and abs(value) != float("inf"):
            values.append(value)
    for low, high in ((1e14, 1e17), (1e-6, 1e-3), (0.5, 1e6)):
        values += [rng.uniform(low, high) for _ in range(count // 4)]
    values += [float(rng.randrange(10**14, 10**17)) for _ in range(count // 4)]
    values += [10.0**e for e in range(-20, 25)] + [-(10.0**e) for e in range(-20, 25)]
    return values


def test_float_spelling_matches_real_ruby_resque_encode_for_thousands_of_floats() -> None:
    lib = require_ruby_resque()
    values = _doubles(4000)
    script = (
        'require "resque"; bits = STDIN.read.split.map { |h| [h].pack("H*").unpack1("E") }; '
        "puts Resque.encode(bits)"
    )
    done = subprocess.run(
        ["ruby", "-I", lib, "-e", script],
        input=" ".join(struct.pack("<d", v).hex() for v in values),
        capture_output=True, text=True, timeout=60, check=True,
    )
    ruby = done.stdout.strip()[1:-1].split(",")
    ours = rubyjson.encode(values)[1:-1].split(",")
    differing = [(v, r, o) for v, r, o in zip(values, ruby, ours, strict=True) if r != o]
    assert differing == []


# --- strict reading ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("[NaN]", "NaN is not a JSON number"),
        ("[Infinity]", "Infinity is not a JSON number"),
        ("[-Infinity]", "-Infinity is not a JSON number"),
        ("[1e400]", "number 1e400 is too large for a float"),
        ("[-1.5E+999]", "number -1.5E+999 is too large for a float"),
        ("[" + "9" * 400 + ".0]", "is too large for a float"),
        (b'["\xff"]', "can't decode byte 0xff"),
        (b'["\xed\xa0\x80"]', "can't decode byte 0xed"),  # a surrogate encoded as UTF-8
        ('["\\ud800"]', "half a surrogate pair"),
        ('["\\uDC00 tail"]', "half a surrogate pair"),
        ('["\\ude00\\ud83d"]', "half a surrogate pair"),  # both halves, in the wrong order
        ('["\udcff"]', "surrogates not allowed"),  # a str holding one already
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_strict_decoding_refuses_values_a_job_must_never_see(
    raw: str | bytes, reason: str
) -> None:
    with pytest.raises(ValueError, match="^.*" + reason.replace("(", r"\(").replace("+", r"\+")):
        rubyjson.decode_strict(raw)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ('["\\ud83d\\ude00"]', ["\U0001f600"]),  # a surrogate pair is one character
        ('["\\\\ud800"]', ["\\ud800"]),  # an escaped backslash, then plain letters
        ('[1.0e+20,1e-5,1.7976931348623157e308]', [1e20, 1e-5, 1.7976931348623157e308]),
        (b'["\xe2\x98\x83"]', ["\u2603"]),
        ('["NaN", "Infinity"]', ["NaN", "Infinity"]),
    ],
)
def test_strict_decoding_reads_every_valid_payload(raw: str | bytes, value: object) -> None:
    assert rubyjson.decode_strict(raw) == value


def test_tolerant_decoding_keeps_bytes_that_are_not_utf8() -> None:
    assert rubyjson.decode(b'["\xff"]') == ["\udcff"]


@pytest.mark.parametrize("raw", ["[NaN]", "[1e400]", '{"a":-Infinity}'])
def test_tolerant_decoding_still_refuses_numbers_json_cannot_write_back(raw: str) -> None:
    with pytest.raises(ValueError):
        rubyjson.decode(raw)
