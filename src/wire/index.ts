// The wire package: one framing and the codecs shared by transport, client, native door and tracer.
export * from './errors.ts';
export * from './frame-types.ts';
export * from './frame.ts';
export * from './hello.ts';
export * from './forward.ts';
export * from './channel.ts';
export * from './raft-codec.ts';
export * from './client-types.ts';
export * from './client-codec.ts';
export * from './names.ts';
export { Reader, Writer } from './bytes.ts';
