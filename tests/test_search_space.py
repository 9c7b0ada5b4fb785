"""Search spaces as data: validation, hashing, JSON and HyperParameters round trips, bad files,
and the architecture drawing."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from di_nas import config
from di_nas.errors import UserError
from di_nas.search_space import enas_micro, get_space, load_architecture, nb201, registry
from di_nas.search_space.render import cells, render_architecture

SPACES = ["enas_micro", "nb201"]


@pytest.fixture(params=SPACES)
def space(request):
    return get_space(request.param)


def test_lengths_and_choices():
    enas = get_space("enas_micro")
    assert enas.length == 40
    # Node n (0-based) of a cell reads one of n + 2 states; ops are one of 5.
    assert [d.num_choices for d in enas.decisions[:4]] == [2, 5, 2, 5]
    assert enas.decisions[-2].num_choices == 6
    assert get_space("nb201").length == 6
    assert all(d.num_choices == 5 for d in get_space("nb201").decisions)
    with pytest.raises(UserError, match="unknown search space"):
        get_space("darts")


@pytest.mark.parametrize("values, match", [
    ([0] * 5, "needs 6 choices, got 5"),
    ([0] * 7, "needs 6 choices, got 7"),
    ([0, 0, 5, 0, 0, 0], "out of range"),
    ([0, -1, 0, 0, 0, 0], "out of range"),
    ([0, 0, 1.5, 0, 0, 0], "must be an integer"),
    ([True, 0, 0, 0, 0, 0], "must be an integer"),
])
def test_validation_errors(values, match):
    with pytest.raises(UserError, match=match):
        get_space("nb201").architecture(values)


def test_validation_accepts_integral_floats():
    arch = get_space("nb201").architecture([1.0, 2, 3, 4, 0, 1])
    assert arch.values == (1, 2, 3, 4, 0, 1)
    assert all(type(v) is int for v in arch.values)


def test_enas_input_range_is_per_node():
    enas = get_space("enas_micro")
    values = [0] * 40
    values[0] = 2  # Node 2 may only read the two cell inputs.
    with pytest.raises(UserError, match="normal/n2/x/input"):
        enas.architecture(values)


def test_hash_and_equality(space):
    rng = np.random.default_rng(0)
    a = space.sample(rng)
    b = space.architecture(list(a.values))
    assert a == b and hash(a) == hash(b)
    assert len({a, b}) == 1
    bumped = [(v + 1) % d.num_choices for v, d in zip(a.values, space.decisions, strict=True)]
    other = space.architecture(bumped)
    assert other != a
    assert get_space("nb201").architecture([0] * 6) != get_space("enas_micro").architecture(
        [0] * 40)


def test_json_round_trip(space, tmp_path):
    rng = np.random.default_rng(1)
    for _ in range(5):
        arch = space.sample(rng)
        path = str(tmp_path / "arch.json")
        arch.save(path)
        assert not os.path.exists(path + ".tmp")
        loaded = load_architecture(path, expected_space=space.name)
        assert loaded == arch and loaded.space_name == space.name
        data = json.loads(open(path).read())
        assert data["readable"] == str(arch)


def test_hyperparameters_round_trip(space):
    hp = space.hyperparameters()
    assert [p.name for p in hp.space] == [d.name for d in space.decisions]
    rng = np.random.default_rng(2)
    for _ in range(5):
        arch = space.sample(rng)
        for name, value in arch.hp_values().items():
            hp.values[name] = value
        assert space.from_hp_values(hp.values) == arch
    with pytest.raises(UserError, match="lack"):
        space.from_hp_values({})


def test_bad_files(tmp_path):
    missing = str(tmp_path / "missing.json")
    with pytest.raises(UserError, match="missing.json does not exist"):
        load_architecture(missing)
    with pytest.raises(UserError, match="no architecture given"):
        load_architecture("")
    cases = {
        "not_json.json": ("{not json", "is not valid JSON"),
        "list.json": ("[1, 2, 3]", "must be an object"),
        "no_values.json": ('{"space": "nb201"}', "must be an object"),
        "values_str.json": ('{"space": "nb201", "values": "0,1"}', "must be a list"),
        "short.json": ('{"space": "nb201", "values": [0, 1]}', "needs 6 choices"),
        "unknown_space.json": ('{"space": "darts", "values": [0]}', "unknown search space"),
    }
    for name, (content, match) in cases.items():
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(UserError, match=match) as info:
            load_architecture(str(path))
        assert str(path) in str(info.value), name
    arch_path = str(tmp_path / "nb.json")
    get_space("nb201").architecture([1] * 6).save(arch_path)
    with pytest.raises(UserError, match="from space 'nb201' but this job uses") as info:
        load_architecture(arch_path, expected_space="enas_micro")
    assert arch_path in str(info.value)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UserError, match="is not UTF-8 text") as info:
        load_architecture(str(path))
    assert str(path) in str(info.value)


def test_loose_ends():
    # Every node reads only the cell inputs: all five are loose ends.
    assert enas_micro.loose_ends([0, 0, 1, 0] * 5) == [0, 1, 2, 3, 4]
    # A chain: node k reads node k-1, so only the last one is loose.
    chain = [0, 0, 1, 0]
    for node in range(1, 5):
        chain += [node + 1, 0, node + 1, 0]
    assert enas_micro.loose_ends(chain) == [4]
    # Unlike ENAS, a cell input no node reads is not part of the output: this chain never
    # reads cell input 0, which ENAS would concatenate with node 4; the output is node 4 alone
    # (see `di_nas.supernet.enas` for why).
    chain = [1, 0, 1, 0] + chain[4:]
    assert all(chain[n * 4 + 2 * s] != 0 for n in range(5) for s in range(2))
    assert enas_micro.loose_ends(chain) == [4]


def test_describe():
    nb = get_space("nb201").architecture([3, 0, 1, 2, 4, 3])
    assert str(nb) == ("|conv_3x3~0|+|none~0|skip_connect~1|+"
                       "|conv_1x1~0|avg_pool_3x3~1|conv_3x3~2|")
    enas = get_space("enas_micro").architecture([0, 0, 1, 4] * 10)
    text = str(enas)
    assert text.startswith("normal: 2=sep3(0)+id(1)")
    assert "| reduce: " in text and text.endswith("-> concat(2,3,4,5,6)")
    assert nb201.EDGES == ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


def test_render_writes_png(space, tmp_path):
    path = str(tmp_path / f"{space.name}.png")
    render_architecture(space.sample(np.random.default_rng(3)), path)
    with open(path, "rb") as f:
        data = f.read()
    assert data.startswith(b"\x89PNG") and len(data) > 5000
    assert not os.path.exists(path + ".tmp")


def test_registry_lists_each_space_once_and_config_validates_with_it():
    assert registry.names() == tuple(SPACES) == config.SPACES
    for name in SPACES:
        entry = registry.entry(name)
        assert entry.name == name and get_space(name) is entry.space
    with pytest.raises(UserError, match="unknown search space 'darts': choose one of "
                                        "enas_micro, nb201"):
        registry.entry("darts")
    with pytest.raises(UserError, match="space.name='darts' is not known"):
        config.SpaceConfig(name="darts")


def test_spaces_and_config_import_without_tensorflow():
    code = ("import sys, di_nas.config, di_nas.search_space; "
            "sys.exit(int(any(m in sys.modules for m in ('tensorflow', 'keras'))))")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_op_decisions_choose_from_the_op_table(space):
    ops = [d for d in space.decisions if d.kind == "op"]
    assert ops and all(d.num_choices == len(space.op_table) for d in ops)
    assert space.ops == tuple(op.name for op in space.op_table)


def test_degenerate_nb201_cells():
    assert nb201.is_degenerate((0, 0, 0, 0, 0, 0))
    assert nb201.is_degenerate((3, 3, 3, 0, 0, 0))  # Nothing flows into node 3.
    assert not nb201.is_degenerate((0, 0, 0, 1, 0, 0))  # skip 0 -> 3


def test_drawing_has_an_edge_per_op_decision(space):
    arch = space.sample(np.random.default_rng(4))
    panels = cells(arch)
    labels = [e.label for cell in panels for e in cell.edges if e.label]
    chosen = [space.ops[v] for v, d in zip(arch.values, space.decisions, strict=True)
              if d.kind == "op"]
    assert labels == chosen
    for cell in panels:
        assert all(e.src in cell.nodes and e.dst in cell.nodes for e in cell.edges)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
