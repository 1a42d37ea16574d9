"""tcp_proxy.py — the fault scenarios' TCP proxy: a small load balancer
in front of parleyd nodes that can also play a broken network.

Proxy(backends) listens on 127.0.0.1 (a free port) and, for each accepted
connection, connects to the first backend that takes it (so a proxy whose
first backend died fails over to the next, as a TCP load balancer with a
fallback would). On command it:

  stall()   stops forwarding both ways (connections stay open, bytes wait
            in the kernel; new connections are accepted and held too), as
            a network that silently drops everything would;
  resume()  forwards again;
  cut()     closes every open connection, both sides.

One thread runs the loop (poll); commands are carried out by that thread
before the call returns. Bytes are buffered per direction up to a bound,
past which the source is not read (back-pressure, nothing dropped).
"""
import errno
import select
import socket
import threading

BUF_LIMIT = 1 << 20
CONNECT_TIMEOUT_S = 1.0


class _Pair:
    def __init__(self, down, up, backend):
        self.down, self.up, self.backend = down, up, backend
        self.to_up, self.to_down = bytearray(), bytearray()
        self.down_eof = self.up_eof = False


class Proxy:
    def __init__(self, backends, name="proxy"):
        self.name = name
        self.backends = list(backends)  # [(host, port)], in order of preference
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._lock = threading.Lock()
        self._orders = []  # (what, threading.Event)
        self._pairs = []
        self._stalled = False
        self._stop = False
        # statistics, read by the scenarios
        self.accepted = 0
        self.by_backend = {}  # backend -> connections made to it
        self.refused = 0  # accepted but no backend took it
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    # ---- commands (any thread) ----

    def _order(self, what):
        done = threading.Event()
        with self._lock:
            self._orders.append((what, done))
        self._wake_w.send(b"x")
        if not done.wait(10):
            raise RuntimeError("%s: the loop did not take the order %s" % (self.name, what))

    def stall(self):
        self._order("stall")

    def resume(self):
        self._order("resume")

    def cut(self):
        self._order("cut")

    def close(self):
        self._order("stop")
        self._thread.join(10)

    def connections(self):
        with self._lock:
            return len(self._pairs)

    # ---- the loop ----

    def _take_orders(self):
        with self._lock:
            orders, self._orders = self._orders, []
        for what, done in orders:
            if what == "stall":
                self._stalled = True
            elif what == "resume":
                self._stalled = False
            elif what == "cut":
                for p in list(self._pairs):
                    self._close(p)
            elif what == "stop":
                self._stop = True
                for p in list(self._pairs):
                    self._close(p)
            done.set()

    def _close(self, p):
        for s in (p.down, p.up):
            try:
                s.close()
            except OSError:
                pass
        with self._lock:
            if p in self._pairs:
                self._pairs.remove(p)

    def _accept(self):
        try:
            down, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        self.accepted += 1
        for backend in self.backends:
            try:
                up = socket.create_connection(backend, timeout=CONNECT_TIMEOUT_S)
            except OSError:
                continue
            for s in (down, up):
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.by_backend[backend] = self.by_backend.get(backend, 0) + 1
            with self._lock:
                self._pairs.append(_Pair(down, up, backend))
            return
        self.refused += 1
        down.close()

    @staticmethod
    def _read(src, buf):
        """Appends what src has to buf; False at EOF or error."""
        try:
            data = src.recv(65536)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        if not data:
            return False
        buf += data
        return True

    @staticmethod
    def _write(dst, buf):
        try:
            n = dst.send(buf)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError as e:
            return e.errno in (errno.EAGAIN,)
        del buf[:n]
        return True

    def _main(self):
        while not self._stop:
            self._take_orders()
            if self._stop:
                break
            poller = select.poll()
            poller.register(self._wake_r, select.POLLIN)
            poller.register(self.listener, select.POLLIN)
            fds = {}
            if not self._stalled:
                for p in list(self._pairs):
                    for sock, inbuf, outbuf, eof in ((p.down, p.to_up, p.to_down, p.down_eof),
                                                     (p.up, p.to_down, p.to_up, p.up_eof)):
                        ev = 0
                        if not eof and len(inbuf) < BUF_LIMIT:
                            ev |= select.POLLIN
                        if outbuf:
                            ev |= select.POLLOUT
                        if ev:
                            poller.register(sock, ev)
                            fds[sock.fileno()] = p
            for fd, ev in poller.poll(1000):
                if fd == self._wake_r.fileno():
                    try:
                        self._wake_r.recv(4096)
                    except OSError:
                        pass
                elif fd == self.listener.fileno():
                    self._accept()
                elif fd in fds and not self._stalled:
                    self._service(fds[fd], fd, ev)

    def _service(self, p, fd, ev):
        if p not in self._pairs:
            return
        is_down = fd == p.down.fileno()
        src, dst = (p.down, p.up) if is_down else (p.up, p.down)
        inbuf, outbuf = (p.to_up, p.to_down) if is_down else (p.to_down, p.to_up)
        ok = True
        if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
            if not self._read(src, inbuf):
                if is_down:
                    p.down_eof = True
                else:
                    p.up_eof = True
        if ev & select.POLLOUT:
            ok = self._write(src, outbuf)
        if inbuf:
            ok = self._write(dst, inbuf) and ok
        # one side gone: pass on what it sent, then close both (a proxy
        # does not keep half-open connections)
        if not ok or ((p.down_eof or p.up_eof) and not p.to_up and not p.to_down):
            self._close(p)
        elif ev & (select.POLLERR | select.POLLNVAL):
            self._close(p)
