"""Drives `bioxen xapi-sim` with the official XenAPI Python SDK: a full deploy,
start, guest address, shutdown, destroy, and several failures. Prints OK at the end."""
import sys, time, subprocess
import XenAPI

url, key = sys.argv[1], sys.argv[2]

def fails(code, fn, *args):
    try:
        fn(*args)
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

ev = getattr(x.event, "from")(["vm"], "", 0.1)
assert any(e["ref"] == vm for e in ev["events"]), ev
fails("VM_BAD_POWER_STATE", x.VM.destroy, vm)
x.VM.clean_shutdown(vm)
vdis = [x.VBD.get_VDI(b) for b in x.VM.get_VBDs(vm)]
x.VM.destroy(vm)
for v in vdis:
    x.VDI.destroy(v)
fails("HANDLE_INVALID", x.VM.get_record, vm)

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
