export * from './errors.js';
export * from './events.js';
export * from './limits.js';
export * from './schemas.js';
export * from './socket.js';
export * from './validate.js';
export * from './crypto-contract.js';
export * from './wire-parser.js';
