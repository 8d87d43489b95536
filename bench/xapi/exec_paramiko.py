"""Remote exec round trips over one SSH connection with paramiko."""
import sys, time, paramiko
port, key, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = paramiko.SSHClient()
c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
c.connect("127.0.0.1", port=port, key_filename=key, look_for_keys=False, allow_agent=False)
def run():
    _, out, _ = c.exec_command("true")
    assert out.channel.recv_exit_status() == 0
for _ in range(10):
    run()
t = time.perf_counter()
for _ in range(n):
    run()
dt = time.perf_counter() - t
print("paramiko one connection: %d execs in %.3f s = %.2f ms/exec" % (n, dt, dt / n * 1000))
