"""XAPI calls per second from the XenAPI Python SDK: N sequential calls on one session."""
import sys, time, XenAPI
url, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5000
s = XenAPI.Session(url)
s.xenapi.login_with_password("root", "pw", "2.21", "bench")
x = s.xenapi
vm = x.VM.get_by_name_label("Debian Bookworm 12")[0]
for _ in range(200):
    x.VM.get_power_state(vm)
t = time.perf_counter()
for _ in range(n):
    x.VM.get_power_state(vm)
dt = time.perf_counter() - t
print("XenAPI  %d calls in %.3f s = %.0f calls/s" % (n, dt, n / dt))
s.xenapi.session.logout()
