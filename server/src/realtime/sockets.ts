import type { Server, Socket } from 'socket.io';
import type { ClientToServerEvents, InterServerEvents, ServerToClientEvents, SocketData } from '@curbside/shared';

/**
 * The hub's socket.io server and sockets, typed by the wire contract. In a module of their own so
 * that the gateway, security and session expiry share them without importing one another.
 */
export type HubServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type HubSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
