/**
 * The two baselines, each run as its own process by the bench runner:
 *   tsx scripts/bench/relays.ts ws        a bare `ws` server: rooms, forward each frame to the room, ack
 *   tsx scripts/bench/relays.ts socketio  a bare socket.io server with Curbside's MessagePack parser:
 *                                         join rooms, `socket.to(room).emit`, ack. No auth, validation,
 *                                         storage or audit.
 * Prints "Listening on http://127.0.0.1:<port>" when ready.
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { WebSocketServer, type WebSocket } from 'ws';
import { wireParser, Limits } from '@curbside/shared';
import { WsOp } from './common.js';
import { parseArgs } from 'node:util';

const kind = parseArgs({ allowPositionals: true }).positionals[0];

async function listen(server: ReturnType<typeof createServer>): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

if (kind === 'ws') {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, maxPayload: Limits.MAX_FRAME_BYTES, perMessageDeflate: false });
  const rooms = new Map<number, Set<WebSocket>>();
  wss.on('connection', (ws) => {
    const joined: number[] = [];
    ws.on('message', (data: Buffer, isBinary) => {
      if (!isBinary || data.length < 5) return ws.close(1003);
      const op = data[0];
      const room = data.readUInt32BE(1);
      if (op === WsOp.JOIN) {
        let set = rooms.get(room);
        if (!set) rooms.set(room, (set = new Set()));
        set.add(ws);
        joined.push(room);
        const reply = Buffer.allocUnsafe(5);
        reply[0] = WsOp.JOINED;
        reply.writeUInt32BE(room, 1);
        ws.send(reply);
      } else if (op === WsOp.MSG) {
        for (const peer of rooms.get(room) ?? []) if (peer !== ws) peer.send(data);
        const ack = Buffer.allocUnsafe(5);
        ack[0] = WsOp.ACK;
        data.copy(ack, 1, 5, 9); // the message number
        ws.send(ack);
      }
    });
    ws.on('close', () => {
      for (const r of joined) rooms.get(r)?.delete(ws);
    });
  });
  const port = await listen(http);
  process.stdout.write(`bare ws relay\n  Listening on http://127.0.0.1:${port}\n`);
} else if (kind === 'socketio') {
  const http = createServer();
  const io = new Server(http, { serveClient: false, maxHttpBufferSize: Limits.MAX_FRAME_BYTES, parser: wireParser });
  io.on('connection', (socket) => {
    socket.on('join', (rooms: string[], ack: () => void) => {
      void socket.join(rooms);
      ack();
    });
    socket.on('msg', (req: { conversationId: string }, ack: (res: unknown) => void) => {
      socket.to(req.conversationId).emit('msg', req);
      ack({ ok: true });
    });
  });
  const port = await listen(http);
  process.stdout.write(`bare socket.io relay\n  Listening on http://127.0.0.1:${port}\n`);
} else {
  process.stderr.write('usage: relays.ts ws|socketio\n');
  process.exit(2);
}
process.on('SIGTERM', () => process.exit(0));
