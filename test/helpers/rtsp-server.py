#!/usr/bin/python3
"""A live RTSP camera for the ingest tests (GStreamer's RTSP server, Debian packages).

Serves rtsp://127.0.0.1:PORT/cam: an appsrc is fed one frame every 1/FPS s from a thread; each
frame shows its own number as a 4x4 grid of black/white blocks (16 bits, LSB top-left, row by
row) so a test can decode which frame it got; numbers are unique over the server's life. The frame's buffer is timestamped when it is pushed
(do-timestamp), and the wall clock at that moment is printed: the truth of its capture time.

stdout, one JSON object per line:
  {"ready": PORT}                        once listening
  {"n": N, "t": UNIX_MS}                 frame N was captured (pushed) at UNIX_MS
Stops on SIGTERM/SIGINT, or after --seconds (a bound, so it never outlives a test run).

usage: rtsp-server.py --port PORT [--fps 25] [--bframes 0] [--seconds 120]
"""
import argparse
import itertools
import json
import signal
import sys
import threading
import time

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

W, H = 320, 240
BW, BH = W // 4, H // 4


def frame_bytes(n: int) -> bytes:
    y = bytearray(W * H)
    for bit in range(16):
        if (n >> bit) & 1:
            bx, by = (bit % 4) * BW, (bit // 4) * BH
            row = b'\xeb' * BW
            for r in range(by, by + BH):
                y[r * W + bx:r * W + bx + BW] = row
        else:
            bx, by = (bit % 4) * BW, (bit // 4) * BH
            row = b'\x10' * BW
            for r in range(by, by + BH):
                y[r * W + bx:r * W + bx + BW] = row
    return bytes(y) + b'\x80' * (W * H // 2)


def emit(obj) -> None:
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--fps', type=int, default=25)
    ap.add_argument('--bframes', type=int, default=0)
    ap.add_argument('--seconds', type=float, default=120)
    args = ap.parse_args()

    Gst.init(None)
    loop = GLib.MainLoop()
    server = GstRtspServer.RTSPServer()
    server.set_address('127.0.0.1')
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    enc = 'x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps}'.format(fps=args.fps)
    if args.bframes > 0:
        # zerolatency turns B-frames off; a plain low-latency preset keeps them.
        enc = 'x264enc speed-preset=ultrafast bframes={b} b-adapt=false key-int-max={fps} rc-lookahead=0 sync-lookahead=0'.format(
            b=args.bframes, fps=args.fps)
    factory.set_launch(
        '( appsrc name=src is-live=true do-timestamp=true format=time '
        'caps=video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 '
        '! {enc} ! video/x-h264,profile=main ! rtph264pay name=pay0 pt=96 config-interval=1 )'.format(
            w=W, h=H, fps=args.fps, enc=enc))
    factory.set_shared(True)
    stop = threading.Event()
    # One numbering for the server's life: a client that probes first (ffprobe) and the one that
    # then reads each get a media of their own, and their frames must not share numbers.
    counter = itertools.count()
    lock = threading.Lock()

    def feed(appsrc) -> None:
        period = 1.0 / args.fps
        ticks = 0
        start = time.monotonic()
        while not stop.is_set():
            with lock:
                n = next(counter)
            data = frame_bytes(n)
            buf = Gst.Buffer.new_wrapped(data)
            buf.duration = int(Gst.SECOND / args.fps)
            t = time.time() * 1000.0
            if appsrc.emit('push-buffer', buf) != Gst.FlowReturn.OK:
                return
            emit({'n': n, 't': round(t, 3)})
            ticks += 1
            delay = start + ticks * period - time.monotonic()
            if delay > 0:
                stop.wait(delay)

    def on_configure(_factory, media) -> None:
        appsrc = media.get_element().get_by_name('src')
        threading.Thread(target=feed, args=(appsrc,), daemon=True).start()

    factory.connect('media-configure', on_configure)
    server.get_mount_points().add_factory('/cam', factory)
    if server.attach(None) == 0:
        sys.stderr.write('rtsp-server: cannot listen on port {}\n'.format(args.port))
        sys.exit(1)

    def quit_(*_):
        stop.set()
        loop.quit()
        return False

    # GLib's own handlers: a Python handler would not run while the main loop blocks in poll().
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, quit_)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, quit_)
    GLib.timeout_add(int(args.seconds * 1000), quit_)
    emit({'ready': args.port})
    loop.run()


if __name__ == '__main__':
    main()
