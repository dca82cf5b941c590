#!/usr/bin/env python3
"""A TCP relay to a real server that can turn into a peer that accepts and
never answers: the one fault of a degraded API server that the real
kube-apiserver cannot be made to produce on its own (SIGSTOP freezes it, but
then the kernel still completes handshakes and nothing is read).  Standard
library only; used by tests/bridge/test_stall.sh.

    blackhole_proxy.py TARGET_PORT

Prints the port it listens on (127.0.0.1, chosen by the kernel), then:
  SIGUSR1  black hole: every open connection goes silent (bytes from either
           side are read and dropped), new connections are accepted and
           never answered;
  SIGUSR2  relay again: the silent connections are closed (as a server
           that recovers would have lost them) and new ones are relayed.
"""
import asyncio
import signal
import sys

target = int(sys.argv[1])
silent = False
stalled = set()


async def pump(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if silent:
                continue
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def discard(reader, writer):
    stalled.add(writer)
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass
    finally:
        stalled.discard(writer)
        writer.close()


async def serve(creader, cwriter):
    if silent:
        await discard(creader, cwriter)
        return
    try:
        sreader, swriter = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        cwriter.close()
        return
    stalled.add(cwriter)
    stalled.add(swriter)
    await asyncio.gather(pump(creader, swriter), pump(sreader, cwriter))
    stalled.discard(cwriter)
    stalled.discard(swriter)


def black_hole():
    global silent
    silent = True


def relay():
    global silent
    if not silent:
        return
    silent = False
    for w in list(stalled):
        w.close()
    stalled.clear()


async def main():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, black_hole)
    loop.add_signal_handler(signal.SIGUSR2, relay)
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
