"""The predecessor's interactive pattern: a `lua -i` subprocess, input written
to its stdin, output read after a fixed 0.5 s wait. Prints microseconds per
send + read round trip. Usage: python3 bench/sessions/predecessor.py [ROUNDS]"""
import fcntl, os, subprocess, sys, time

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
p = subprocess.Popen(["lua", "-i"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT)
fl = fcntl.fcntl(p.stdout, fcntl.F_GETFL)
fcntl.fcntl(p.stdout, fcntl.F_SETFL, fl | os.O_NONBLOCK)

def read_available():
    try:
        return os.read(p.stdout.fileno(), 65536)
    except BlockingIOError:
        return b""

time.sleep(0.5)
read_available()  # banner and prompt
t0 = time.perf_counter()
for _ in range(rounds):
    p.stdin.write(b"print(1)\n")
    p.stdin.flush()
    time.sleep(0.5)  # the predecessor's fixed wait
    out = read_available()
    assert b"1\n" in out, out
elapsed = (time.perf_counter() - t0) / rounds

# The same subprocess without the fixed wait: block until the output arrives.
import select
fast_rounds = 2000
t0 = time.perf_counter()
for _ in range(fast_rounds):
    p.stdin.write(b"print(1)\n")
    p.stdin.flush()
    out = b""
    while b"1\n" not in out:
        select.select([p.stdout], [], [])
        out += read_available()
fast = (time.perf_counter() - t0) / fast_rounds
p.stdin.close()
p.wait()
print("predecessor\t%.2f" % (elapsed * 1e6))
print("predecessor-nowait\t%.2f" % (fast * 1e6))
