/**
 * runjournal: a client of the runjournal served API v1 for Node 20, over the
 * owner's Unix socket or TCP with a bearer token, with no dependency beyond
 * Node's standard library.
 */

export { Journal, API_VERSION, type ConnectOptions, type Resumed } from "./journal.js";
export { Run, type AppendOptions, type WriteOptions, type CompactionInfo, type Handoff, type Usage } from "./run.js";
export { Subscription, type SubscribeOptions, type EndReason } from "./subscription.js";
export { parseSse, type SseMessage } from "./sse.js";
export { encodeSegment, runPath } from "./paths.js";
export { SOCKET_NAME } from "./transport.js";
export * from "./errors.js";
export * from "./types.js";
