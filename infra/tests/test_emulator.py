"""The emulator launcher binds its port before reporting it: two launchers asked for any free
port get two different ones, and a taken port is refused at once with a clear message."""
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

LAUNCHER = os.path.join(os.path.dirname(__file__), "..", "emulator.py")


def start(port, port_file):
    return subprocess.Popen([sys.executable, LAUNCHER, "serve", "--port", str(port), "--port-file", port_file],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(path, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return int(open(path, encoding="utf-8").read())
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


class LauncherTest(unittest.TestCase):
    def test_ports_are_bound_before_they_are_reported(self):
        with tempfile.TemporaryDirectory() as d:
            a, b = os.path.join(d, "a"), os.path.join(d, "b")
            first, second = start(0, a), start(0, b)
            try:
                pa, pb = wait_for(a), wait_for(b)
                self.assertNotEqual(pa, pb)
                with urllib.request.urlopen(f"http://127.0.0.1:{pa}/moto-api/", timeout=5) as r:
                    self.assertEqual(r.status, 200)
                taken = start(pa, os.path.join(d, "c"))
                out, _ = taken.communicate(timeout=30)
                self.assertNotEqual(taken.returncode, 0)
                self.assertIn(f"cannot listen on 127.0.0.1:{pa}", out)
            finally:
                for p in (first, second):
                    p.terminate()
                    p.wait(timeout=10)


if __name__ == "__main__":
    unittest.main()
