#!/usr/bin/python3
"""parley_chat_tty.py — tools/parley-chat at a keyboard (a pseudo-terminal),
under with_parleyd.py: A types in a terminal, with a typo fixed by
Backspace, UTF-8 and an arrow key (ignored); B, listening on a pipe, sees
that A is typing, then the line with A's name; A sees its message
delivered and read (B's parley-chat marks what it shows as read), and
Ctrl-D ends it cleanly.

  parley_chat_tty.py PARLEY_CHAT
"""
import os
import pty
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time


def main(chat):
    addr, sms = os.environ["PARLEY_ADDR"], os.environ["PARLEY_SMS_FILE"]
    tmp = tempfile.mkdtemp(prefix="parley-chat-tty-")
    try:
        n = random.randrange(1000, 9999)
        a, b = "+1555500%d" % n, "+1555600%d" % n

        def cmd(who, phone, *extra):
            return [chat, "--server", addr, "--sms-file", sms, "--state-dir", os.path.join(tmp, who),
                    "--phone", phone] + list(extra)

        for who, phone, name in (("B", b, "Bob"), ("A", a, "Alice")):
            subprocess.run(cmd(who, phone, "--name", name), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           check=True, timeout=30)
        bout = open(os.path.join(tmp, "b.out"), "w")
        listener = subprocess.Popen(["sh", "-c", "sleep 10 | exec \"$0\" \"$@\""] + cmd("B", b, "--to", a),
                                    stdout=bout, stderr=bout)
        time.sleep(1.5)
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(chat, cmd("A", a, "--to", b))
        out = bytearray()

        def pump(seconds):
            end = time.time() + seconds
            while time.time() < end:
                r, _, _ = select.select([fd], [], [], 0.05)
                if r:
                    try:
                        out.extend(os.read(fd, 4096))
                    except OSError:
                        return

        pump(1.5)
        for ch in "hellx":
            os.write(fd, ch.encode())
            pump(0.15)
        os.write(fd, b"\x7f")  # Backspace
        os.write(fd, "o wörld".encode())
        os.write(fd, b"\x1b[A")  # an arrow key
        pump(0.5)
        os.write(fd, b"\r")
        pump(4)
        os.write(fd, b"\x04")  # Ctrl-D
        pump(2)
        _, status = os.waitpid(pid, 0)
        listener.wait(timeout=30)
        bout.close()
        a_text = out.decode(errors="replace")
        b_text = open(os.path.join(tmp, "b.out")).read()
        problems = []
        if os.waitstatus_to_exitcode(status) != 0:
            problems.append("A's parley-chat exited with %d" % os.waitstatus_to_exitcode(status))
        if "Alice (%s) is typing" % a not in b_text:
            problems.append("B never saw A typing")
        if "Alice (%s): hello wörld" % a not in b_text:
            problems.append("B did not get A's edited line with A's name")
        if "hellx" in b_text:
            problems.append("the Backspace did not edit the line")
        if "you: hello wörld" not in a_text:
            problems.append("A's own line is not shown")
        if "delivered" not in a_text and "read" not in a_text:
            problems.append("A saw no receipt")
        if "read: \"hello wörld\"" not in a_text:
            problems.append("A never saw its message read")
        if problems:
            print("FAIL:", "; ".join(problems))
            print("---- A (terminal)\n" + a_text.replace("\r", ""))
            print("---- B (pipe)\n" + b_text)
            return 1
        print("PASS client.parley_chat_tty")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
