"""mcd.py on a scratch tree: decoding, modes, units, enablement, masks, rollout removal.

No node needed; these pin the MCD emulation the node tests rely on.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from pathlib import Path

import pytest

import mcd

UNIT = "[Unit]\nDescription=x\n[Service]\nType=oneshot\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target \\\n  other.target\nRequiredBy=req.target\nAlias=alias-x.service\n"


def machineconfig(files=(), units=()) -> dict:
    return {"apiVersion": "machineconfiguration.openshift.io/v1", "kind": "MachineConfig",
            "metadata": {"name": "t"},
            "spec": {"config": {"ignition": {"version": "3.2.0"}, "storage": {"files": list(files)},
                                "systemd": {"units": list(units)}}}}


@pytest.fixture
def root(tmp_path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nsvc:x:990:991::/:/bin/false\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nsvc:x:991:\n")
    return tmp_path


@pytest.mark.parametrize("url,expected", [
    ("data:,hello%20world%0A", b"hello world\n"),
    ("data:text/plain;charset=utf-8;base64,aGk=", b"hi"),
    ("data:;base64,", b""),
    ("data:,", b""),
    ("data:,a,b", b"a,b"),
])
def test_decode_data_url(url, expected):
    assert mcd.decode_data_url(url) == expected


@pytest.mark.parametrize("url", ["https://example.invalid/x", "data:;base64,!!!", "data:no-comma"])
def test_decode_data_url_rejects(url):
    with pytest.raises(mcd.MachineConfigError):
        mcd.decode_data_url(url)


def test_files_written_with_mode_owner_parents_and_gzip(root):
    gz = base64.b64encode(gzip.compress(b"zipped\n")).decode()
    mc = machineconfig(files=[
        {"path": "/etc/a/b/plain", "contents": {"source": "data:,x"}},
        {"path": "/etc/secret", "mode": 384, "user": {"name": "svc"}, "group": {"id": 5},
         "contents": {"source": "data:;base64," + gz, "compression": "gzip"}},
        {"path": "/var/empty-file"},
    ])
    report = mcd.apply_offline(root, mc)
    assert (root / "etc/a/b/plain").read_bytes() == b"x"
    assert (root / "etc/a/b/plain").stat().st_mode & 0o7777 == 0o644
    assert (root / "etc/a/b").stat().st_mode & 0o7777 == 0o755
    st = (root / "etc/secret").stat()
    assert (root / "etc/secret").read_bytes() == b"zipped\n"
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o600, 990, 5)
    assert (root / "var/empty-file").read_bytes() == b""
    assert sorted(report.written) == ["/etc/a/b/plain", "/etc/secret", "/var/empty-file"]
    assert json.loads((root / "etc/machine-config-daemon/currentconfig").read_text()) == mc
    assert mcd.apply_offline(root, mc).unchanged == report.written


def test_units_enabled_masked_dropins(root):
    mc = machineconfig(units=[
        {"name": "x.service", "enabled": True, "contents": UNIT,
         "dropins": [{"name": "10-a.conf", "contents": "[Service]\nEnvironment=A=1\n"}]},
        {"name": "m.service", "mask": True},
        {"name": "d.service", "enabled": False, "contents": UNIT},
    ])
    mcd.apply_offline(root, mc)
    sd = root / "etc/systemd/system"
    assert (sd / "x.service").read_text() == UNIT
    assert (sd / "x.service.d/10-a.conf").read_text().startswith("[Service]")
    for link in ("multi-user.target.wants/x.service", "other.target.wants/x.service",
                 "req.target.requires/x.service", "alias-x.service"):
        assert os.readlink(sd / link) == "/etc/systemd/system/x.service", link
    assert os.readlink(sd / "m.service") == "/dev/null"
    assert not (sd / "multi-user.target.wants/d.service").exists()


def test_enable_vendor_unit_without_contents(root):
    vendor = root / "lib/systemd/system"
    vendor.mkdir(parents=True)
    (vendor / "v.service").write_text(UNIT)
    mcd.apply_offline(root, machineconfig(units=[{"name": "v.service", "enabled": True}]))
    assert os.readlink(root / "etc/systemd/system/multi-user.target.wants/v.service") == "/lib/systemd/system/v.service"


def test_disable_and_unmask(root):
    first = machineconfig(units=[{"name": "x.service", "enabled": True, "contents": UNIT},
                                 {"name": "m.service", "mask": True}])
    mcd.apply_offline(root, first)
    second = machineconfig(units=[{"name": "x.service", "enabled": False, "contents": UNIT},
                                  {"name": "m.service", "contents": UNIT}])
    mcd.rollout(root, second, reload=lambda: None)
    sd = root / "etc/systemd/system"
    assert not (sd / "multi-user.target.wants/x.service").is_symlink()
    assert not (sd / "m.service").is_symlink() and (sd / "m.service").read_text() == UNIT


def test_rollout_removes_what_the_new_config_drops_and_reloads_before_currentconfig(root):
    first = machineconfig(files=[{"path": "/etc/gone", "contents": {"source": "data:,1"}},
                                 {"path": "/etc/kept", "contents": {"source": "data:,1"}}],
                          units=[{"name": "x.service", "enabled": True, "contents": UNIT,
                                  "dropins": [{"name": "a.conf", "contents": "[Unit]\n"}]}])
    mcd.apply_offline(root, first)
    second = machineconfig(files=[{"path": "/etc/kept", "contents": {"source": "data:,2"}}])
    seen = []
    report = mcd.rollout(root, second, reload=lambda: seen.append(mcd.read_current_config(root)))
    assert seen == [first], "daemon-reload must run before currentconfig changes"
    assert mcd.read_current_config(root) == second
    assert not (root / "etc/gone").exists()
    assert (root / "etc/kept").read_bytes() == b"2"
    sd = root / "etc/systemd/system"
    assert not (sd / "x.service").exists() and not (sd / "x.service.d/a.conf").exists()
    assert not (sd / "multi-user.target.wants/x.service").is_symlink()
    assert {"/etc/gone", "/etc/systemd/system/x.service"} <= set(report.removed)


def test_paths_resolve_inside_the_root(root):
    (root / "var").mkdir()
    os.symlink("/run", root / "var/run")  # absolute: must land in root/run, not the host's /run
    mcd.apply_offline(root, machineconfig(files=[{"path": "/var/run/rwe2e-x", "contents": {"source": "data:,1"}}]))
    assert (root / "run/rwe2e-x").read_bytes() == b"1"
    assert not Path("/run/rwe2e-x").exists()


def test_masked_unit_is_replaced_not_written_through(root):
    sd = root / "etc/systemd/system"
    sd.mkdir(parents=True)
    os.symlink("/dev/null", sd / "y.service")
    mcd.apply_offline(root, machineconfig(units=[{"name": "y.service", "contents": UNIT}]))
    assert (sd / "y.service").read_text() == UNIT and not (sd / "y.service").is_symlink()


@pytest.mark.parametrize("bad", [
    machineconfig(files=[{"path": "relative", "contents": {"source": "data:,1"}}]),
    machineconfig(files=[{"path": "/etc/../x", "contents": {"source": "data:,1"}}]),
    machineconfig(files=[{"path": "/etc/x", "mode": -1}]),
    machineconfig(files=[{"path": "/etc/x", "contents": {"source": "data:,1", "compression": "bzip2"}}]),
    machineconfig(units=[{"name": "../x.service", "contents": UNIT}]),
    machineconfig(units=[{"name": "nofile.service", "enabled": True}]),
])
def test_invalid_configs_are_refused(root, bad):
    with pytest.raises(mcd.MachineConfigError):
        mcd.apply_offline(root, bad)


def test_load_yaml_and_json(tmp_path):
    mc = machineconfig()
    (tmp_path / "mc.json").write_text(json.dumps(mc))
    assert mcd.load(tmp_path / "mc.json") == mc
    seed = mcd.load(Path(__file__).resolve().parents[2] / "examples/seed-machineconfig.yaml")
    assert [u["name"] for u in mcd.units_of(seed)] == ["nmcli-dev-modify.service"]
    (tmp_path / "list.yaml").write_text("- kind: MachineConfig\n")
    with pytest.raises(mcd.MachineConfigError):
        mcd.load(tmp_path / "list.yaml")


def test_install_section_parsing():
    assert mcd.install_section(UNIT) == {"WantedBy": ["multi-user.target", "other.target"],
                                         "RequiredBy": ["req.target"], "Alias": ["alias-x.service"]}
    assert mcd.install_section("[Install]\nWantedBy=a.target\nWantedBy=\nWantedBy=b.target\n") == {"WantedBy": ["b.target"]}
    assert mcd.template_of("getty@tty1.service") == "getty@.service"
