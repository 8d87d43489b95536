"""Drives `bioxen xapi-sim` with the official XenAPI Python SDK: a full deploy,
start, guest address, shutdown, destroy, and several failures. Prints OK at the end."""
import sys, time, subprocess
import XenAPI

url, key = sys.argv[1], sys.argv[2]

def fails(code, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except XenAPI.Failure as e:
        assert e.details[0] == code, (code, e.details)
        return e.details
    raise AssertionError("expected " + code)

s = XenAPI.Session(url)
fails("SESSION_AUTHENTICATION_FAILED", s.xenapi.login_with_password, "root", "bad", "2.21", "sdk-test")
s.xenapi.login_with_password("root", "pw", "2.21", "sdk-test")
x = s.xenapi

templates = [r for r in x.VM.get_all() if x.VM.get_is_a_template(r)]
tpl = x.VM.get_by_name_label("Debian Bookworm 12")[0]
assert tpl in templates
fails("VM_IS_TEMPLATE", x.VM.start, tpl, False, False)
fails("MESSAGE_METHOD_UNKNOWN", x.VM.frobnicate, tpl)
fails("MESSAGE_PARAMETER_COUNT_MISMATCH", x.VM.start, tpl)

vm = x.VM.clone(tpl, "sdk-guest")
x.VM.provision(vm)
x.VM.set_is_a_template(vm, False)
fails("MEMORY_CONSTRAINT_VIOLATION", x.VM.set_memory_limits, vm, str(1 << 30), str(1 << 29), str(1 << 29), str(1 << 29))
x.VM.set_memory_limits(vm, str(256 << 20), str(512 << 20), str(512 << 20), str(512 << 20))
assert x.VM.get_memory_static_max(vm) == str(512 << 20)  # int64 as a string
fails("INVALID_VALUE", x.VM.set_VCPUs_at_startup, vm, "4")
net = x.network.get_all()[0]
x.VIF.create({"device": "0", "network": net, "VM": vm, "MAC": "", "MTU": "1500", "other_config": {},
              "qos_algorithm_type": "", "qos_algorithm_params": {}})
assert len(x.VM.get_VBDs(vm)) == 1, "provision made the disk"

# disks: VDI.create, VBD.create with XAPI's checks, a CD drive's insert/eject
sr = x.VDI.get_SR(x.VBD.get_VDI(x.VM.get_VBDs(vm)[0]))
data = x.VDI.create({"name_label": "data", "name_description": "", "SR": sr, "virtual_size": str(1 << 30),
                     "type": "user", "sharable": False, "read_only": False, "other_config": {}})
assert x.VDI.get_virtual_size(data) == str(1 << 30)
def vbd(**kw):
    rec = {"VM": vm, "VDI": data, "userdevice": "1", "bootable": False, "mode": "RW", "type": "Disk",
           "unpluggable": True, "empty": False, "other_config": {}, "qos_algorithm_type": "",
           "qos_algorithm_params": {}}
    rec.update(kw)
    return x.VBD.create(rec)
data_vbd = vbd()
fails("DEVICE_ALREADY_EXISTS", vbd)
fails("INVALID_DEVICE", vbd, userdevice="sixteen")
fails("VBD_NOT_REMOVABLE_MEDIA", vbd, userdevice="2", VDI="OpaqueRef:NULL", empty=True)
fails("VBD_CDS_MUST_BE_READONLY", vbd, userdevice="3", type="CD", VDI="OpaqueRef:NULL", empty=True)
cd = vbd(userdevice="autodetect", type="CD", mode="RO", VDI="OpaqueRef:NULL", empty=True)
assert x.VBD.get_userdevice(cd) == "2" and x.VBD.get_empty(cd) is True
fails("VBD_IS_EMPTY", x.VBD.eject, cd)
fails("VBD_NOT_REMOVABLE_MEDIA", x.VBD.insert, data_vbd, data)
iso = x.VDI.create({"name_label": "tools.iso", "name_description": "", "SR": sr, "virtual_size": str(1 << 20),
                    "type": "user", "sharable": False, "read_only": True, "other_config": {}})
fails("VDI_READONLY", vbd, userdevice="4", VDI=iso)
x.VBD.insert(cd, iso)
fails("VBD_NOT_EMPTY", x.VBD.insert, cd, iso)
x.VBD.eject(cd)
x.VBD.destroy(cd)
fails("VM_BAD_POWER_STATE", x.VBD.plug, data_vbd)
rec = x.VBD.get_record(data_vbd)
for f in ("uuid", "VM", "VDI", "device", "userdevice", "bootable", "mode", "type", "unpluggable", "empty",
          "currently_attached", "other_config", "qos_algorithm_type", "status_code", "metrics"):
    assert f in rec, ("VBD record lacks", f)
assert x.VDI.get_VBDs(data) == [data_vbd]

task = x.Async.VM.start(vm, False, False)
while x.task.get_status(task) == "pending":
    time.sleep(0.01)
assert x.task.get_status(task) == "success"
x.task.destroy(task)
fails("VM_BAD_POWER_STATE", x.VM.start, vm, False, False)

ip = None
for _ in range(200):
    gm = x.VM.get_guest_metrics(vm)
    if gm != "OpaqueRef:NULL":
        ip = x.VM_guest_metrics.get_networks(gm)["0/ip"]
        break
    time.sleep(0.02)
assert ip and ip.startswith("127."), ip
out = subprocess.run(["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                      "-o", "BatchMode=yes", "-i", key, ip, "echo guest-ok"], capture_output=True, text=True)
assert out.stdout == "guest-ok\n", out

# attached disks: VBD.destroy and VDI.destroy refuse; snapshots of a running VM
assert x.VBD.get_currently_attached(data_vbd) is True
fails("OPERATION_NOT_ALLOWED", x.VBD.destroy, data_vbd)
fails("VDI_IN_USE", x.VDI.destroy, data)
fails("DEVICE_ALREADY_ATTACHED", x.VBD.plug, data_vbd)
x.VBD.unplug(data_vbd)
fails("DEVICE_ALREADY_DETACHED", x.VBD.unplug, data_vbd)
x.VBD.plug(data_vbd)
snap = x.VM.snapshot(vm, "before-upgrade")
srec = x.VM.get_record(snap)
assert srec["is_a_snapshot"] is True and srec["is_a_template"] is True and srec["snapshot_of"] == vm, srec
assert srec["power_state"] == "Halted" and srec["snapshot_time"] != "19700101T00:00:00Z"
assert x.VM.get_snapshots(vm) == [snap]
fails("VM_IS_SNAPSHOT", x.VM.start, snap, False, False)
fails("VM_IS_TEMPLATE", x.VM.snapshot, tpl, "nope")
snap_vdis = [x.VBD.get_VDI(b) for b in x.VM.get_VBDs(snap)]
assert len(snap_vdis) == 2
for v in snap_vdis:
    r = x.VDI.get_record(v)
    assert r["is_a_snapshot"] is True and r["snapshot_of"] in [x.VBD.get_VDI(b) for b in x.VM.get_VBDs(vm)], r
    assert x.VDI.get_snapshots(r["snapshot_of"]) == [v]
vmrec = x.VM.get_record(vm)
for f in ("uuid", "name_label", "name_description", "power_state", "is_a_template", "is_a_snapshot",
          "snapshot_of", "snapshots", "snapshot_time", "is_control_domain", "memory_static_min",
          "memory_static_max", "memory_dynamic_min", "memory_dynamic_max", "VCPUs_max", "VCPUs_at_startup",
          "resident_on", "affinity", "metrics", "guest_metrics", "domid", "VIFs", "VBDs", "consoles",
          "other_config", "tags", "platform", "allowed_operations", "current_operations", "parent",
          "children", "user_version", "actions_after_shutdown", "actions_after_reboot",
          "actions_after_crash", "HVM_boot_policy", "PV_args", "xenstore_data", "blocked_operations"):
    assert f in vmrec, ("VM record lacks", f)
assert vmrec["parent"] == tpl and vm in x.VM.get_children(tpl)
assert "clean_shutdown" in vmrec["allowed_operations"] and "start" not in vmrec["allowed_operations"]
x.VM.destroy(snap)
fails("HANDLE_INVALID", x.VM.get_record, snap)
assert x.VM.get_snapshots(vm) == []
for v in snap_vdis:  # VM.destroy leaves the disks, as XAPI does
    x.VDI.destroy(v)

ev = getattr(x.event, "from")(["vm"], "", 0.1)
assert any(e["ref"] == vm for e in ev["events"]), ev
fails("VM_BAD_POWER_STATE", x.VM.destroy, vm)
x.VM.clean_shutdown(vm)
vdis = [x.VBD.get_VDI(b) for b in x.VM.get_VBDs(vm)]
x.VM.destroy(vm)
assert data in vdis
for v in vdis:
    x.VDI.destroy(v)
x.VDI.destroy(iso)
fails("HANDLE_INVALID", x.VM.get_record, vm)
fails("HANDLE_INVALID", x.VBD.get_record, data_vbd)

# a pool member that is not the master
member = [h for h in x.host.get_all() if h != x.pool.get_master(x.pool.get_all()[0])][0]
m = XenAPI.Session("http://" + x.host.get_address(member) + "/")
fails("HOST_IS_SLAVE", m.xenapi.login_with_password, "root", "pw", "2.21", "sdk-test")

ref = s._session
s.xenapi.session.logout()
import xmlrpc.client
raw = xmlrpc.client.ServerProxy(url).VM.get_all(ref)
assert raw["Status"] == "Failure" and raw["ErrorDescription"][0] == "SESSION_INVALID", raw
print("OK")
